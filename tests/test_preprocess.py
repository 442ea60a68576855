"""Tests for codephys_jax.preprocess: shapes, fps resampling, labels, no-face errors, pulse."""

import numpy as np
import pytest
from scipy import signal as sps

from codephys_jax.face import NoFaceError
from codephys_jax.preprocess import PreprocessConfig, align_labels, preprocess_video
from codephys_jax.synthetic_video import make_subject
from codephys_jax.video import FrameIterSource, open_video, write_video


def _index_frames(n, h=24, w=32):
  """Flat frames whose grey level encodes the frame index."""
  return [np.full((h, w, 3), 5 * i, np.uint8) for i in range(n)]


def test_full_frame_resampling_25_to_30_fps(tmp_path):
  path = tmp_path / "vid.avi"
  write_video(path, _index_frames(50), 25.0)
  cfg = PreprocessConfig(size=16, roi="full_frame", skin_mask=False)
  with open_video(path) as src:
    out = preprocess_video(src, cfg)
  t_src = np.arange(50) / 25.0
  n_expected = int(np.floor(t_src[-1] * 30 + 1e-9)) + 1  # 59
  assert len(out) == n_expected == 59
  assert out.frames.shape == (59, 16, 16, 3) and out.frames.dtype == np.uint8
  assert out.rgb.shape == (59, 3) and out.rgb.dtype == np.float32
  assert out.valid.dtype == np.bool_ and out.valid.all()
  assert out.timestamps.dtype == np.float64
  np.testing.assert_allclose(out.timestamps, np.arange(59) / 30.0, atol=1e-9)
  assert out.fps == 30.0 and out.source_fps == pytest.approx(25.0)
  assert out.num_source_frames == 50
  # Frames: latest source frame at or before each output time.
  idx = np.searchsorted(t_src, out.timestamps + 1e-9, side="right") - 1
  np.testing.assert_array_equal(out.frames[:, 0, 0, 0], 5 * idx)
  # RGB: linear interpolation of per-frame means.
  np.testing.assert_allclose(
      out.rgb[:, 1], np.interp(out.timestamps, t_src, 5.0 * np.arange(50)), atol=1e-3
  )


def test_downsampling_60_to_30_keeps_every_other_frame():
  frames = _index_frames(40)
  src = FrameIterSource(lambda: iter(frames), 60.0, size=(32, 24))
  out = preprocess_video(src, PreprocessConfig(size=8, roi="full_frame"))
  assert len(out) == 20
  np.testing.assert_array_equal(out.frames[:, 0, 0, 0], 5 * np.arange(0, 40, 2))


def test_config_fingerprint_and_validation():
  a, b = PreprocessConfig(), PreprocessConfig()
  assert a.fingerprint() == b.fingerprint()
  assert len(a.fingerprint()) == 12 and int(a.fingerprint(), 16) >= 0
  assert PreprocessConfig(size=128).fingerprint() != a.fingerprint()
  assert PreprocessConfig(roi="full_frame").fingerprint() != a.fingerprint()
  with pytest.raises(ValueError, match="roi must be one of"):
    PreprocessConfig(roi="forehead")
  assert (a.detector, a.rgb_roi, a.skin_mask) == ("blazeface", "landmarks", False)
  assert PreprocessConfig(rgb_roi="box").fingerprint() != a.fingerprint()
  assert PreprocessConfig(detector="haar", rgb_roi="box").fingerprint() != a.fingerprint()
  with pytest.raises(ValueError, match="detector must be one of"):
    PreprocessConfig(detector="yunet")
  with pytest.raises(ValueError, match="rgb_roi must be one of"):
    PreprocessConfig(rgb_roi="cheeks")
  # Haar gives no keypoints to place the landmark patches.
  with pytest.raises(ValueError, match="needs a detector with keypoints"):
    PreprocessConfig(detector="haar", rgb_roi="landmarks")
  PreprocessConfig(detector="haar", rgb_roi="landmarks", roi="full_frame")  # not used there


def test_no_face_is_an_error_naming_the_file(tmp_path):
  rng = np.random.default_rng(0)
  bg = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
  frames = [np.clip(bg + rng.integers(-5, 6, bg.shape), 0, 255).astype(np.uint8) for _ in range(12)]
  path = tmp_path / "subject9" / "vid.avi"
  path.parent.mkdir()
  write_video(path, frames, 30.0)
  with open_video(path) as src, pytest.raises(NoFaceError) as err:
    preprocess_video(src)
  assert str(path) in str(err.value) and "no face" in str(err.value)
  # Only an explicit full-frame request processes it.
  with open_video(path) as src:
    out = preprocess_video(src, PreprocessConfig(size=16, roi="full_frame", skin_mask=False))
  assert len(out) == 12 and out.valid.all()


def test_face_roi_on_synthetic_subject_shapes():
  subject = make_subject(1, duration_s=1.0, fps=30.0, width=320, height=240)
  out = preprocess_video(subject.source(), PreprocessConfig(size=36))
  assert out.frames.shape == (30, 36, 36, 3)
  assert out.valid.mean() > 0.95
  assert np.isfinite(out.rgb[out.valid]).all()
  # Skin mean is skin-coloured: red > green > blue.
  r, g, b = np.nanmean(out.rgb, axis=0)
  assert r > g > b
  # The crop is the face: its centre pixel is skin-toned too (not background).
  c = out.frames[:, 18, 18].astype(float).mean(axis=0)
  assert c[0] > c[2]


def _spectral_peak_bpm(x, fs):
  b, a = sps.butter(2, [0.75 / (fs / 2), 2.5 / (fs / 2)], btype="band")
  y = sps.filtfilt(b, a, sps.detrend(x))
  nfft = 8192
  f = np.fft.rfftfreq(nfft, 1 / fs)
  p = np.abs(np.fft.rfft(y * np.hanning(len(y)), nfft)) ** 2
  band = (f >= 0.75) & (f <= 2.5)
  return 60 * f[band][np.argmax(p[band])]


@pytest.mark.parametrize("rgb_roi", ["landmarks", "box"])
def test_skin_rgb_trace_contains_the_pulse(rgb_roi):
  subject = make_subject(5, duration_s=10.0, fps=30.0, width=320, height=240)
  cfg = PreprocessConfig(size=36, rgb_roi=rgb_roi, skin_mask=rgb_roi == "box")
  out = preprocess_video(subject.source(), cfg)
  assert out.valid.mean() > 0.95
  green = out.rgb[:, 1].astype(np.float64)
  green = np.interp(out.timestamps, out.timestamps[out.valid], green[out.valid])
  hr_video = _spectral_peak_bpm(green, out.fps)
  hr_ref = _spectral_peak_bpm(subject.ppg.astype(np.float64), subject.fps)
  assert abs(hr_video - hr_ref) < 2.0, (hr_video, hr_ref, subject.mean_hr)
  assert abs(hr_video - subject.mean_hr) < 3.0, (hr_video, subject.mean_hr)


def test_align_labels():
  frames_t = np.arange(90) / 30.0 + 0.01
  label_t = np.arange(200) / 60.0  # 0 .. 3.32 s covers 0.01 .. 2.98 s
  values = np.sin(2 * np.pi * 1.1 * label_t)
  got = align_labels(label_t, values, frames_t)
  assert got.dtype == np.float32 and got.shape == (90,)
  np.testing.assert_allclose(got, np.interp(frames_t, label_t, values), atol=1e-6)
  np.testing.assert_allclose(got, np.sin(2 * np.pi * 1.1 * frames_t), atol=3e-3)
  # Labels start half a frame late: within tolerance, edge value held (no extrapolation).
  late = label_t + 0.025
  got = align_labels(late, values, frames_t)
  assert got[0] == pytest.approx(values[0])
  # Labels a second short of the video: a clear error.
  with pytest.raises(ValueError, match="labels end at .* before the last frame"):
    align_labels(label_t[:120], values[:120], frames_t)
  with pytest.raises(ValueError, match="labels start at .* after the first frame"):
    align_labels(label_t + 0.5, values, frames_t)
  with pytest.raises(ValueError, match="label times"):
    align_labels(label_t, values[:-1], frames_t)


def test_landmark_patch_frames_hold_skin_and_the_pulse():
  subject = make_subject(5, duration_s=10.0, fps=30.0, width=320, height=240)
  out = preprocess_video(subject.source(), PreprocessConfig(size=16, roi="landmark_patches"))
  assert out.frames.shape == (len(out.timestamps), 16, 16, 3)
  assert out.valid.mean() > 0.95
  # Skin only: every part of the mosaic is skin-toned (red > green > blue), where
  # the enlarged face box's corners are background.
  quarters = [out.frames[:, :8], out.frames[:, 8:, :8], out.frames[:, 8:, 8:]]
  for q in quarters:
    r, g, b = q[out.valid].reshape(-1, 3).astype(float).mean(axis=0)
    assert r > g > b
  green = out.frames[:, :, :, 1].astype(np.float64).mean(axis=(1, 2))
  hr_video = _spectral_peak_bpm(green, out.fps)
  hr_ref = _spectral_peak_bpm(subject.ppg.astype(np.float64), subject.fps)
  assert abs(hr_video - hr_ref) < 2.0, (hr_video, hr_ref)
  with pytest.raises(ValueError, match="even size"):
    PreprocessConfig(size=15, roi="landmark_patches")
