"""Tests for the video degradation library (small 64x64 frames)."""

import cv2
import numpy as np
import pytest

from codephys_jax import degradations as dg

NAMES = sorted(dg.DEGRADATIONS)


def _frame(seed=0, size=64):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size]
  texture = cv2.GaussianBlur(rng.uniform(0, 1, (size, size, 3)).astype(np.float32), (0, 0), 1.0)
  base = 60 + 80 * xx[..., None] / size + 90 * texture
  blob = np.exp(-((xx - 0.55 * size) ** 2 + (yy - 0.45 * size) ** 2) / (2 * (0.12 * size) ** 2))
  return np.clip(base + 60 * blob[..., None], 0, 255).astype(np.uint8)


def _clip(t=6):
  return np.stack([_frame(i) for i in range(t)])


def _psnr(a, b):
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  return np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _high_freq_energy(img):
  g = img.astype(np.float64).mean(axis=2)
  return np.sum(np.diff(g, axis=0) ** 2) + np.sum(np.diff(g, axis=1) ** 2)


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_identity_and_shapes_preserved(name):
  clip = _clip(3)
  np.testing.assert_array_equal(dg.make_degradation(name, 0, seed=1).apply_clip(clip), clip)
  out = dg.make_degradation(name, 3, seed=1).apply_clip(clip, start_index=40)
  assert out.dtype == np.uint8 and out.shape == clip.shape
  assert not np.array_equal(out, clip)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_chunking_independent(name):
  clip = _clip(6)
  deg = dg.make_degradation(name, 4, seed=7)
  whole = deg.apply_clip(clip, start_index=100)
  chunked = np.concatenate(
      [deg.apply_clip(clip[:2], start_index=100), deg.apply_clip(clip[2:], start_index=102)]
  )
  reversed_order = np.stack([deg(clip[t], 100 + t) for t in reversed(range(6))])[::-1]
  np.testing.assert_array_equal(whole, chunked)
  np.testing.assert_array_equal(whole, reversed_order)
  np.testing.assert_array_equal(
      whole, dg.make_degradation(name, 4, seed=7).apply_clip(clip, start_index=100)
  )


@pytest.mark.parametrize("name", ["sensor_noise", "motion_blur", "illumination", "head_motion"])
def test_seeds_differ(name):
  clip = _clip(4)
  a = dg.make_degradation(name, 4, seed=1).apply_clip(clip, start_index=30)
  b = dg.make_degradation(name, 4, seed=2).apply_clip(clip, start_index=30)
  assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "name", ["sensor_noise", "gaussian_blur", "defocus", "motion_blur", "jpeg", "video_codec"]
)
def test_psnr_decreases_with_severity(name):
  frame = _frame(3)
  psnrs = [
      np.mean([_psnr(frame, dg.make_degradation(name, s, seed=0)(frame, i)) for i in (0, 17)])
      for s in range(6)
  ]
  assert psnrs[0] == np.inf
  assert all(a > b for a, b in zip(psnrs[1:], psnrs[2:])), psnrs


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus", "motion_blur"])
def test_blur_removes_high_frequencies(name):
  frame = _frame(4)
  energies = [_high_freq_energy(dg.make_degradation(name, s, seed=0)(frame, 5)) for s in range(6)]
  assert energies[5] < 0.5 * energies[0]
  assert all(a > b for a, b in zip(energies, energies[1:])), energies


def test_kernels_are_normalised_and_shaped():
  disk = dg.disk_kernel(3.0)
  assert disk.sum() == pytest.approx(1.0)
  # Area of the disk (in pixel units) matches pi r^2 via pixel coverage.
  assert (disk > 0).sum() >= 25 and (disk / disk.max()).sum() == pytest.approx(np.pi * 9, rel=0.05)
  line = dg.line_kernel(9.0, 0.0)
  assert line.sum() == pytest.approx(1.0)
  # A horizontal line kernel has all its mass on the centre row.
  assert line[line.shape[0] // 2].sum() == pytest.approx(1.0)
  vertical = dg.line_kernel(9.0, np.pi / 2)
  assert vertical[:, vertical.shape[1] // 2].sum() == pytest.approx(1.0)


def test_motion_blur_direction_varies_over_time():
  # Blur of an isolated dot reveals the kernel; its orientation must change over seconds.
  dot = np.zeros((64, 64, 3), np.uint8)
  dot[32, 32] = 255
  deg = dg.make_degradation("motion_blur", 5, seed=3)
  orientations = []
  for index in range(0, 300, 30):
    out = deg(dot, index)[..., 0].astype(np.float64)
    ys, xs = np.nonzero(out)
    w = out[ys, xs]
    cov = np.cov(np.stack([xs, ys]), aweights=w)
    evals, evecs = np.linalg.eigh(cov)
    orientations.append(np.arctan2(evecs[1, 1], evecs[0, 1]) % np.pi)
  assert np.ptp(orientations) > 0.5


def _centroid(img):
  g = img.astype(np.float64).mean(axis=2)
  g = np.clip(g - 40, 0, None)
  yy, xx = np.mgrid[: g.shape[0], : g.shape[1]]
  return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def test_head_motion_moves_the_centroid_as_its_affine():
  size = 64
  yy, xx = np.mgrid[:size, :size]
  blob = 200 * np.exp(-((xx - 30) ** 2 + (yy - 34) ** 2) / (2 * 5.0**2))
  frame = np.repeat(np.clip(40 + blob, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
  c0 = _centroid(frame)
  deg = dg.make_degradation("head_motion", 5, seed=2)
  shifts = []
  for index in range(0, 240, 20):
    moved = _centroid(deg(frame, index))
    matrix = dg.head_motion_affine(index, 5, 2, size, size)
    expected = matrix[:, :2] @ c0 + matrix[:, 2]
    np.testing.assert_allclose(moved, expected, atol=0.3)
    shifts.append(np.linalg.norm(moved - c0))
  assert max(shifts) > 2.0


def test_illumination_changes_mean_brightness_over_time():
  frame = _frame(5)
  deg = dg.make_degradation("illumination", 4, seed=9)
  means = np.array([deg(frame, i).astype(np.float64).mean() for i in range(0, 300, 5)])
  gains = np.array([dg.illumination_gain(i, 4, 9) for i in range(0, 300, 5)])
  assert np.ptp(means) / frame.mean() > 0.1
  # Brightness follows the documented gain (up to uint8 rounding and clipping).
  assert np.corrcoef(means, gains)[0, 1] > 0.99


def test_sensor_noise_is_signal_dependent():
  dark = np.full((64, 64, 3), 20, np.uint8)
  bright = np.full((64, 64, 3), 200, np.uint8)
  deg = dg.make_degradation("sensor_noise", 5, seed=0)
  std_dark = (deg(dark, 0).astype(np.float64) - 20).std()
  std_bright = (deg(bright, 0).astype(np.float64) - 200).std()
  # Closed form: sqrt(read^2 + gain * level) with read = 7, gain = 1.6.
  assert std_dark == pytest.approx(np.sqrt(49 + 1.6 * 20), rel=0.05)
  assert std_bright == pytest.approx(np.sqrt(49 + 1.6 * 200), rel=0.05)


def test_compose_and_random_degradation():
  clip = _clip(3)
  a = dg.make_degradation("gaussian_blur", 2, seed=0)
  b = dg.make_degradation("sensor_noise", 2, seed=1)
  composed = dg.Compose((a, b)).apply_clip(clip, start_index=5)
  np.testing.assert_array_equal(
      composed, b.apply_clip(a.apply_clip(clip, start_index=5), start_index=5)
  )
  np.testing.assert_array_equal(dg.Compose(()).apply_clip(clip), clip)

  rng = np.random.default_rng(0)
  draws = [dg.random_degradation(rng, ["jpeg", "defocus"], (2.0, 3.0), 0.7) for _ in range(200)]
  applied = [d for d in draws if isinstance(d, dg.Degradation)]
  assert 0.6 < len(applied) / 200 < 0.8
  assert {d.name for d in applied} == {"jpeg", "defocus"}
  assert all(2.0 <= d.severity <= 3.0 for d in applied)
  again = [dg.random_degradation(np.random.default_rng(0), ["jpeg", "defocus"], (2.0, 3.0), 0.7)]
  assert again[0] == draws[0]


def test_invalid_arguments():
  with pytest.raises(ValueError, match="valid names"):
    dg.make_degradation("fog", 1)
  with pytest.raises(ValueError, match="severity"):
    dg.make_degradation("jpeg", 6)
  with pytest.raises(ValueError, match="uint8"):
    dg.make_degradation("jpeg", 1)(np.zeros((8, 8, 3), np.float32), 0)
  with pytest.raises(ValueError, match="unknown degradations"):
    dg.random_degradation(np.random.default_rng(0), ["fog"])
