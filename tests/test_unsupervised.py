"""Tests for the unsupervised rPPG methods on synthetic skin-colour traces with known HR."""

import numpy as np
import pytest

from codephys_jax import hr
from codephys_jax import signal as sig
from codephys_jax import synthetic_ppg
from codephys_jax import unsupervised

FS = 30.0
N = 1350  # 45 s at 30 fps
HRS = (54.0, 75.0, 110.0)


def _trace(mean_hr, seed, n=N):
  sample = synthetic_ppg.synth_ppg(n, FS, mean_hr_bpm=mean_hr, rng=seed)
  rgb = synthetic_ppg.synth_rgb_trace(sample.ppg, FS, rng=seed + 1000)
  return sample, rgb


def _hr_error(name, rgb, true_hr, **kw):
  bvp = unsupervised.extract_bvp(name, rgb, FS, **kw)
  return hr.estimate_hr(sig.postprocess(bvp, FS), FS, method="fft") - true_hr


@pytest.mark.parametrize("name", sorted(unsupervised.METHODS))
def test_each_method_recovers_heart_rate_within_1_bpm(name):
  for i, true_hr in enumerate(HRS):
    sample, rgb = _trace(true_hr, seed=i)
    bvp = unsupervised.extract_bvp(name, rgb, FS)
    assert bvp.shape == (N,)
    assert np.all(np.isfinite(bvp))
    assert abs(bvp.mean()) < 1e-9 * max(1.0, np.abs(bvp).max())
    err = _hr_error(name, rgb, sample.mean_hr)
    assert abs(err) < 1.0, (name, true_hr, err)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("chrom", {}),
        ("pos", {}),
        ("lgi", {}),
        ("omit", {}),
        ("pbv", {"signature": synthetic_ppg.DEFAULT_PBV}),
    ],
)
def test_projection_methods_reject_in_band_intensity_flicker(name, kw):
  # Intensity flicker is common to all channels (along the skin tone), inside the
  # HR band and stronger than the pulse: chrominance/projection methods must
  # cancel it while the plain green channel cannot (checked below).
  t = np.arange(N) / FS
  for i, true_hr in enumerate((54.0, 110.0)):
    sample, rgb = _trace(true_hr, seed=10 + i)
    flicker = 1.0 + 0.015 * np.sin(2 * np.pi * (true_hr / 60.0 + 0.6) * t)
    err = _hr_error(name, rgb * flicker[:, None], sample.mean_hr, **kw)
    assert abs(err) < 1.0, (name, true_hr, err)


def test_green_is_fooled_by_in_band_flicker():
  t = np.arange(N) / FS
  sample, rgb = _trace(75.0, seed=3)
  flicker = 1.0 + 0.015 * np.sin(2 * np.pi * (75.0 / 60.0 + 0.6) * t)
  assert abs(_hr_error("green", rgb * flicker[:, None], sample.mean_hr)) > 20.0


def _pos_reference(rgb, fs):
  # Wang et al. 2017, Algorithm 1, written as the paper's explicit loop.
  n = rgb.shape[0]
  win = int(np.ceil(1.6 * fs))
  h_sum = np.zeros(n)
  count = np.zeros(n)
  proj = np.array([[0, 1, -1], [-2, 1, 1]], dtype=np.float64)
  for m in range(n - win + 1):
    block = rgb[m : m + win].T
    cn = block / block.mean(axis=1, keepdims=True)
    s = proj @ cn
    h = s[0] + s[0].std() / s[1].std() * s[1]
    h_sum[m : m + win] += h - h.mean()
    count[m : m + win] += 1
  out = h_sum / count
  return out - out.mean()


def test_pos_matches_explicit_algorithm_loop():
  _, rgb = _trace(80.0, seed=5, n=300)
  np.testing.assert_allclose(
      unsupervised.pos(rgb, FS), _pos_reference(rgb, FS), rtol=1e-9, atol=1e-12
  )


def test_chrom_output_has_no_intensity_component():
  # A purely multiplicative intensity change with no pulse gives (numerically) no CHROM output.
  rng = np.random.default_rng(0)
  t = np.arange(600) / FS
  intensity = (
      1.0 + 0.05 * np.sin(2 * np.pi * 1.3 * t) + 0.02 * rng.standard_normal(600).cumsum() / 30
  )
  rgb = 150.0 * np.array([0.7, 0.5, 0.4]) * intensity[:, None]
  out = unsupervised.chrom(rgb, FS)
  assert np.abs(out).max() < 1e-9


def test_fastica_separates_independent_sources():
  rng = np.random.default_rng(1)
  t = np.arange(3000) / FS
  sources = np.stack(
      [
          np.sin(2 * np.pi * 1.1 * t),
          np.sign(np.sin(2 * np.pi * 0.37 * t)),
          rng.uniform(-1, 1, t.size),
      ],
      axis=1,
  )
  mixed = sources @ rng.normal(size=(3, 3)).T
  est = unsupervised.fastica(mixed)
  corr = np.abs(np.corrcoef(sources.T, est.T)[:3, 3:])
  assert np.all(corr.max(axis=1) > 0.99), corr
  np.testing.assert_allclose(est.std(axis=0), 1.0, rtol=1e-6)


def test_missing_frames_are_interpolated():
  sample, rgb = _trace(75.0, seed=7)
  broken = rgb.copy()
  broken[100:110] = np.nan
  broken[500] = 0.0
  broken[0] = np.inf
  fixed = unsupervised.prepare_rgb(broken)
  assert np.all(np.isfinite(fixed))
  # Linear interpolation across the gap, and the held value before the first valid frame.
  w = (np.arange(100, 110) - 99) / 11.0
  np.testing.assert_allclose(fixed[100:110], (1 - w)[:, None] * rgb[99] + w[:, None] * rgb[110])
  np.testing.assert_allclose(fixed[500], 0.5 * (rgb[499] + rgb[501]))
  np.testing.assert_allclose(fixed[0], rgb[1])
  for name in unsupervised.METHODS:
    bvp = unsupervised.extract_bvp(name, broken, FS)
    assert bvp.shape == (N,) and np.all(np.isfinite(bvp)), name
    assert abs(_hr_error(name, broken, sample.mean_hr)) < 1.0, name


def test_rejects_unusable_input():
  with pytest.raises(ValueError, match="valid frames"):
    unsupervised.extract_bvp("pos", np.full((50, 3), np.nan), FS)
  with pytest.raises(ValueError, match=r"\[N, 3\]"):
    unsupervised.extract_bvp("chrom", np.ones((50, 4)), FS)
  with pytest.raises(ValueError, match="fs"):
    unsupervised.extract_bvp("green", np.ones((50, 3)), 0.0)


def test_registry():
  assert set(unsupervised.METHODS) == {"green", "ica", "chrom", "pos", "lgi", "pbv", "omit"}
  assert unsupervised.get_method("POS") is unsupervised.pos
  with pytest.raises(ValueError, match="valid names:.*chrom.*pos"):
    unsupervised.get_method("nope")
  _, rgb = _trace(70.0, seed=2, n=200)
  np.testing.assert_array_equal(
      unsupervised.extract_bvp("green", rgb, FS), rgb[:, 1] - rgb[:, 1].mean()
  )
