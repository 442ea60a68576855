"""Tests for codephys_jax.synthetic_video: detectability, determinism, pulse signature."""

import itertools

import numpy as np
import pytest

from codephys_jax.face import detect_faces
from codephys_jax.synthetic_video import PULSE_RGB_SIGNATURE, make_subject, render_video


def test_haar_detects_the_face_for_most_seeds():
  fps = 30.0
  ppg = np.sin(2 * np.pi * 1.2 * np.arange(30) / fps)
  hits = total = 0
  for seed in range(10):
    frames = render_video(ppg, fps, rng=np.random.default_rng(seed))
    for frame in itertools.islice(frames, 0, 30, 10):
      assert frame.dtype == np.uint8 and frame.shape == (240, 320, 3)
      total += 1
      hits += len(detect_faces(frame)) > 0
  assert hits / total >= 0.9, f"{hits}/{total}"


def test_make_subject_is_deterministic_and_consistent():
  a = make_subject(7, duration_s=1.0, fps=25.0, width=160, height=120)
  b = make_subject(7, duration_s=1.0, fps=25.0, width=160, height=120)
  c = make_subject(8, duration_s=1.0, fps=25.0, width=160, height=120)
  assert a.num_frames == 25 and a.ppg.dtype == np.float32 and a.ppg.shape == (25,)
  np.testing.assert_allclose(a.timestamps, np.arange(25) / 25.0)
  np.testing.assert_array_equal(a.ppg, b.ppg)
  assert 55.0 - 5 <= a.mean_hr <= 120.0 + 5
  fa, fb, fc = next(a.frames()), next(b.frames()), next(c.frames())
  np.testing.assert_array_equal(fa, fb)
  assert np.abs(fa.astype(int) - fc).mean() > 5
  # The frame factory restarts: a second pass yields the same frames.
  first_pass = list(a.frames())
  assert len(first_pass) == 25
  np.testing.assert_array_equal(first_pass[0], fa)
  src = a.source()
  assert src.size == (160, 120) and src.num_frames == 25
  with pytest.raises(ValueError, match="hr_range_bpm"):
    make_subject(0, duration_s=1.0, hr_range_bpm=(100.0, 50.0))


def test_pulse_modulates_skin_with_rgb_signature():
  # Still head, constant light, no noise: frame differences are the pulse only.
  frames = list(
      render_video(
          np.array([0.0, 1.0]),
          30.0,
          rng=np.random.default_rng(4),
          pulse_amplitude=0.05,
          motion=0.0,
          lighting=0.0,
          noise_std=0.0,
      )
  )
  lo, hi = (f.astype(np.float64) for f in frames)
  d = hi - lo
  changed = np.abs(d).sum(axis=-1) > 0
  assert 0.05 < changed.mean() < 0.6  # skin only, not background or eyes
  rel = d[changed].sum(axis=0) / lo[changed].sum(axis=0)
  np.testing.assert_allclose(rel / rel[1], PULSE_RGB_SIGNATURE, atol=0.08)
  # Peak-to-peak change of green on the most pulsatile pixels is about 5 % (x map <= ~1.5).
  assert 0.02 < np.percentile(-d[..., 1][changed] / np.maximum(lo[..., 1][changed], 1), 95) < 0.09
  # Skin darkens as the PPG rises (more blood absorbs more light).
  assert np.all(d[changed] <= 1) and d[..., 1][changed].mean() < 0
  # Pulse amplitude varies over the face (cheeks/forehead stronger).
  g_rel = -d[..., 1][changed] / np.maximum(lo[..., 1][changed], 1)
  assert np.percentile(g_rel, 90) > 1.5 * np.percentile(g_rel, 30)


def test_render_video_validates_inputs():
  with pytest.raises(ValueError, match="1-D"):
    next(render_video(np.zeros((2, 2)), 30.0, rng=np.random.default_rng(0)))
  with pytest.raises(ValueError, match="fps"):
    next(render_video(np.zeros(3), 0.0, rng=np.random.default_rng(0)))


def _band_power(frames: np.ndarray, fps: float, lo: float, hi: float) -> float:
  x = frames[:, :, :, 1].astype(np.float64).mean(axis=(1, 2))
  spec = np.abs(np.fft.rfft(x - x.mean())) ** 2
  f = np.fft.rfftfreq(len(x), 1 / fps)
  return float(spec[(f >= lo) & (f <= hi)].sum())


def test_active_motion_adds_in_band_movement_and_is_off_by_default():
  fps = 30.0
  still = np.stack(list(make_subject(3, duration_s=8.0, width=128, height=96).frames()))
  off = np.stack(list(make_subject(3, duration_s=8.0, width=128, height=96, active_motion=0.0).frames()))
  # Off draws nothing more: the default subject, frame for frame.
  np.testing.assert_array_equal(still, off)
  moving = np.stack(list(make_subject(3, duration_s=8.0, width=128, height=96, active_motion=1.0).frames()))
  assert moving.shape == still.shape and moving.dtype == np.uint8
  # The centre of the face (cheeks, nose) gains power inside the heart-rate band...
  centre = (slice(None), slice(36, 60), slice(52, 76))
  assert _band_power(moving[centre], fps, 0.7, 2.5) > 3 * _band_power(still[centre], fps, 0.7, 2.5)
  # ...while the slow drift below it is the default subject's.
  np.testing.assert_allclose(
      moving.astype(float).mean(), still.astype(float).mean(), rtol=0.02
  )


def test_negative_active_motion_is_refused_by_the_renderer_and_the_builder():
  from codephys_jax import data as data_lib

  with pytest.raises(ValueError, match="active_motion must be >= 0"):
    next(iter(make_subject(3, duration_s=2.0, width=64, height=48, active_motion=-0.5).frames()))
  cls = data_lib.builder_class("synthetic_rppg")
  with pytest.raises(ValueError, match="active_motion must be >= 0"):
    cls.make_config(options={"active_motion": -1.0})
  with pytest.raises(ValueError, match="active_motion must be >= 0"):
    cls.make_config(options={"active_motion": float("nan")})
