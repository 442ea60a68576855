"""Tests for codephys_jax.signal against dense / SciPy references."""

import time

import numpy as np
import pytest
import scipy.signal

from codephys_jax import hr
from codephys_jax import signal as sig


def _dense_detrend(z, lam):
  n = z.shape[0]
  d2 = np.zeros((n - 2, n))
  for i in range(n - 2):
    d2[i, i : i + 3] = [1.0, -2.0, 1.0]
  return z - np.linalg.inv(np.eye(n) + lam**2 * d2.T @ d2) @ z


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 9, 10, 17])
def test_next_pow2(n):
  expected = 1
  while expected < n:
    expected *= 2
  assert sig.next_pow2(n) == expected


@pytest.mark.parametrize(
    "n,lam", [(3, 100.0), (4, 100.0), (5, 10.0), (12, 100.0), (40, 100.0), (40, 3.0)]
)
def test_detrend_matches_dense_formula(n, lam):
  z = np.random.default_rng(n).standard_normal(n) + np.linspace(0, 5, n)
  np.testing.assert_allclose(sig.detrend(z, lam=lam), _dense_detrend(z, lam), atol=1e-9)


def test_detrend_columns_and_short_inputs():
  z = np.random.default_rng(0).standard_normal((30, 3))
  out = sig.detrend(z)
  for c in range(3):
    np.testing.assert_allclose(out[:, c], _dense_detrend(z[:, c], 100.0), atol=1e-9)
  np.testing.assert_array_equal(sig.detrend([1.0, 2.0]), [0.0, 0.0])
  np.testing.assert_array_equal(sig.detrend([4.0]), [0.0])


def test_detrend_removes_linear_trend_and_is_linear_time():
  t = np.arange(100_000, dtype=np.float64)
  start = time.perf_counter()
  out = sig.detrend(3.0 + 0.01 * t)
  elapsed = time.perf_counter() - start
  # A straight line has zero second difference, so it is all trend.
  assert np.max(np.abs(out)) < 1e-6
  assert elapsed < 2.0, elapsed


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("n", [12, 300])
def test_bandpass_matches_scipy_filtfilt(order, n):
  x = np.random.default_rng(1).standard_normal(n)
  b, a = scipy.signal.butter(order, [0.75 / 15.0, 2.5 / 15.0], btype="bandpass")
  ref = scipy.signal.filtfilt(b, a, x, padlen=min(3 * max(len(a), len(b)), n - 1))
  np.testing.assert_allclose(sig.bandpass(x, 30.0, order=order), ref, atol=1e-8)


def test_bandpass_zero_phase_and_attenuation():
  fs = 30.0
  t = np.arange(int(20 * fs)) / fs
  x = np.cos(2 * np.pi * 1.2 * t)
  y = sig.bandpass(x, fs)
  mid = slice(150, 450)
  # Zero phase: the filtered cosine peaks where the input peaks (lag 0).
  lags = np.arange(-10, 11)
  xc = [np.dot(x[mid], np.roll(y, -k)[mid]) for k in lags]
  assert lags[int(np.argmax(xc))] == 0
  # Far out of band (0.1 Hz, 8 Hz) is strongly attenuated; in band is not.
  gain = lambda f: np.std(sig.bandpass(np.cos(2 * np.pi * f * t), fs)[mid]) / np.std(
      np.cos(2 * np.pi * f * t)[mid]
  )
  assert gain(1.3) > 0.9
  assert gain(0.1) < 0.1
  assert gain(8.0) < 0.2


@pytest.mark.parametrize(
    "low,high,fs", [(0.0, 2.5, 30.0), (2.5, 0.75, 30.0), (0.75, 15.0, 30.0), (0.75, 2.5, 0.0)]
)
def test_bandpass_rejects_bad_edges(low, high, fs):
  with pytest.raises(ValueError, match="band edges|fs"):
    sig.bandpass(np.ones(50), fs, low_hz=low, high_hz=high)


def test_standardize_and_registry():
  x = np.array([1.0, 2.0, 3.0, 4.0])
  np.testing.assert_allclose(sig.standardize(x), (x - 2.5) / np.std(x))
  np.testing.assert_array_equal(sig.standardize(np.full(4, 7.0)), np.zeros(4))
  frames = np.random.default_rng(0).integers(0, 255, (6, 4, 4, 3)).astype(np.uint8)
  z = sig.normalize(frames, "standardized")
  assert z.dtype == np.float32
  f = frames.astype(np.float64)
  np.testing.assert_allclose(z, (f - f.mean()) / f.std(), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(sig.normalize(x, "raw"), x)
  with pytest.raises(ValueError, match="unknown normalisation"):
    sig.normalize(x, "zscore")


def test_diff_normalize_formula_video_and_label():
  frames = np.random.default_rng(0).uniform(10, 200, (7, 3, 3, 3)).astype(np.float32)
  out = sig.diff_normalize(frames)
  assert out.shape == (6, 3, 3, 3) and out.dtype == np.float32
  f = frames.astype(np.float64)
  d = (f[1:] - f[:-1]) / (f[1:] + f[:-1] + 1e-7)
  np.testing.assert_allclose(out, d / d.std(), rtol=1e-4, atol=1e-5)
  y = np.array([0.0, 1.0, -1.0, 2.0])
  dd = np.diff(y)
  np.testing.assert_allclose(sig.normalize(y, "diff_normalized", label=True), dd / dd.std())


def test_diff_normalize_then_integrate_recovers_hr():
  fs = 30.0
  t = np.arange(int(30 * fs)) / fs
  ppg = 2.0 + np.sin(2 * np.pi * 1.3 * t) + 0.3 * np.sin(2 * np.pi * 2.6 * t + 1.0)
  label = sig.diff_normalize_label(ppg)
  rec = sig.postprocess(label, fs, diff_normalized=True)
  assert abs(hr.estimate_hr(rec, fs) - 78.0) < 1.0
  # integrate is the inverse of diff up to the first sample.
  np.testing.assert_allclose(sig.integrate(np.diff(ppg)), ppg[1:] - ppg[0], atol=1e-12)


def test_resample_by_timestamps_nonuniform():
  rng = np.random.default_rng(0)
  t_src = np.cumsum(rng.uniform(0.01, 0.03, 200))
  x = np.sin(3 * t_src)
  t_dst = sig.uniform_times(t_src[0], t_src[-1], 30.0)
  np.testing.assert_allclose(
      sig.resample_by_timestamps(t_src, x, t_dst), np.interp(t_dst, t_src, x), atol=1e-12
  )
  multi = np.stack([x, 2 * x], axis=1)
  out = sig.resample_by_timestamps(t_src, multi, t_dst)
  np.testing.assert_allclose(out[:, 1], 2 * np.interp(t_dst, t_src, x), atol=1e-12)
  with pytest.raises(ValueError, match="strictly increasing"):
    sig.resample_by_timestamps([0.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.5])


def test_uniform_times():
  t = sig.uniform_times(1.0, 2.0, 10.0)
  np.testing.assert_allclose(t, 1.0 + np.arange(11) / 10.0)
  assert sig.uniform_times(0.0, 0.95, 10.0).shape == (10,)


def test_postprocess_equals_manual_chain():
  x = np.random.default_rng(3).standard_normal(200)
  manual = sig.bandpass(sig.detrend(np.cumsum(x), lam=100.0), 30.0)
  np.testing.assert_allclose(sig.postprocess(x, 30.0, diff_normalized=True), manual)
