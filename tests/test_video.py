"""Tests for codephys_jax.video: round trips, timestamps, error messages."""

import cv2
import numpy as np
import pytest

from codephys_jax import video
from codephys_jax.video import (
    FrameIterSource,
    ImageSequenceSource,
    VideoError,
    open_video,
    write_video,
)


def _frames(n=8, h=48, w=64, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_ffv1_round_trip_is_lossless(tmp_path):
  frames = _frames()
  path = tmp_path / "vid.avi"
  assert write_video(path, frames, 25.0) == "FFV1"
  with open_video(path) as src:
    assert src.fps == pytest.approx(25.0)
    assert src.num_frames == 8
    assert src.size == (64, 48)
    got = list(src)
  assert len(got) == 8
  for (t, f), ref in zip(got, frames):
    assert f.dtype == np.uint8 and f.shape == (48, 64, 3)
    np.testing.assert_array_equal(f, ref)
  np.testing.assert_allclose([t for t, _ in got], np.arange(8) / 25.0, atol=1e-6)


def test_iterating_twice_gives_same_frames(tmp_path):
  path = tmp_path / "vid.avi"
  write_video(path, _frames(4), 30.0)
  src = open_video(path)
  a = [f for _, f in src]
  b = [f for _, f in src]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_fps_override_sets_timestamps(tmp_path):
  path = tmp_path / "vid.avi"
  write_video(path, _frames(5), 25.0)
  src = open_video(path, fps=10.0)
  assert src.fps == 10.0
  np.testing.assert_allclose([t for t, _ in src], np.arange(5) / 10.0)
  with pytest.raises(VideoError, match="frame rate"):
    open_video(path, fps=0.0)
  with pytest.raises(VideoError, match="frame rate"):
    open_video(path, fps=float("nan"))


def test_mp4_container_decodes(tmp_path):
  path = tmp_path / "vid.mp4"
  frames = [np.full((48, 64, 3), v, np.uint8) for v in (40, 120, 200)]
  write_video(path, frames, 30.0, codec="mp4v")
  got = [f for _, f in open_video(path)]
  assert len(got) == 3
  # Lossy codec, but flat frames survive to within a few levels.
  np.testing.assert_allclose([f.mean() for f in got], [40, 120, 200], atol=4)


@pytest.mark.parametrize(
    "make,problem",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "cannot open video"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, make, problem):
  path = tmp_path / "subject7" / "vid.avi"
  path.parent.mkdir()
  make(path)
  with pytest.raises(VideoError) as err:
    open_video(path)
  assert str(path) in str(err.value)
  assert problem in str(err.value)
  assert err.value.path == str(path)


def test_truncated_stream_no_frames(tmp_path):
  # A valid AVI header whose stream data is cut off: opens but decodes nothing.
  path = tmp_path / "vid.avi"
  write_video(path, _frames(3, 240, 320), 25.0)
  data = path.read_bytes()
  cut = tmp_path / "cut.avi"
  cut.write_bytes(data[:600])
  with pytest.raises(VideoError) as err:
    open_video(cut)
  assert str(cut) in str(err.value)


class _FakeCapture:
  """Stands in for cv2.VideoCapture with broken POS_MSEC metadata."""

  def __init__(self, frames, msec):
    self.frames, self.msec, self.i = frames, msec, 0

  def isOpened(self):
    return True

  def read(self):
    if self.i >= len(self.frames):
      return False, None
    self.i += 1
    return True, self.frames[self.i - 1]

  def get(self, prop):
    return {
        cv2.CAP_PROP_FPS: 20.0,
        cv2.CAP_PROP_FRAME_COUNT: len(self.frames),
        cv2.CAP_PROP_FRAME_WIDTH: 64,
        cv2.CAP_PROP_FRAME_HEIGHT: 48,
        cv2.CAP_PROP_POS_MSEC: self.msec[self.i - 1] if self.i else 0.0,
    }[prop]

  def release(self):
    pass


@pytest.mark.parametrize(
    "msec,expected",
    [
        # Decoder times good: used as they are (non-uniform).
        ([0.0, 50.0, 110.0, 150.0], [0.0, 0.05, 0.11, 0.15]),
        # Constant zero times: frame counting at the nominal 20 fps.
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.05, 0.10, 0.15]),
        # Time jumps backwards at frame 2: counting continues from the last good one.
        ([0.0, 60.0, 10.0, 20.0], [0.0, 0.06, 0.11, 0.16]),
        # NaN metadata.
        ([float("nan")] * 4, [0.0, 0.05, 0.10, 0.15]),
    ],
)
def test_timestamp_fallback(tmp_path, monkeypatch, msec, expected):
  path = tmp_path / "vid.avi"
  path.write_bytes(b"x")
  frames = _frames(4)
  monkeypatch.setattr(
      video.VideoFileSource, "_open_capture", lambda self: _FakeCapture(frames, msec)
  )
  ts = [t for t, _ in open_video(path)]
  np.testing.assert_allclose(ts, expected, atol=1e-9)
  assert np.all(np.diff(ts) > 0)


def test_invalid_container_fps(tmp_path, monkeypatch):
  path = tmp_path / "vid.avi"
  path.write_bytes(b"x")
  fake = _FakeCapture(_frames(2), [0.0, 0.0])
  fake.get = lambda prop: 0.0
  monkeypatch.setattr(video.VideoFileSource, "_open_capture", lambda self: fake)
  with pytest.raises(VideoError, match="invalid frame rate.*fps="):
    open_video(path)
  assert open_video(path, fps=15.0).fps == 15.0


def test_image_sequence_source(tmp_path):
  frames = _frames(4)
  paths = []
  for i, f in enumerate(frames):
    p = tmp_path / f"Image{i:03d}.png"
    cv2.imwrite(str(p), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    paths.append(p)
  ts = [10.0, 10.033, 10.068, 10.1]
  src = ImageSequenceSource(paths, ts)
  assert src.num_frames == 4 and src.size == (64, 48)
  assert src.fps == pytest.approx(1 / np.median(np.diff(ts)))
  got = list(src)
  np.testing.assert_allclose([t for t, _ in got], ts)
  for (_, f), ref in zip(got, frames):
    np.testing.assert_array_equal(f, ref)


def test_image_sequence_errors_name_the_frame(tmp_path):
  good = tmp_path / "a.png"
  cv2.imwrite(str(good), np.zeros((8, 8, 3), np.uint8))
  bad = tmp_path / "b.png"
  bad.write_bytes(b"not a png")
  src = ImageSequenceSource([good, bad], [0.0, 0.1])
  with pytest.raises(VideoError) as err:
    list(src)
  assert str(bad) in str(err.value)
  missing = tmp_path / "c.png"
  with pytest.raises(VideoError, match="frame file not found") as err:
    list(ImageSequenceSource([good, missing], [0.0, 0.1]))
  assert str(missing) in str(err.value)
  with pytest.raises(VideoError, match="strictly increasing"):
    ImageSequenceSource([good, good], [0.0, 0.0])
  with pytest.raises(VideoError, match="timestamps of shape"):
    ImageSequenceSource([good, good], [0.0])


def test_frame_iter_source_checks_frames():
  frames = _frames(3)
  src = FrameIterSource(lambda: iter(frames), 30.0, size=(64, 48), name="synthetic")
  np.testing.assert_allclose([t for t, _ in src], np.arange(3) / 30.0)
  wrong = FrameIterSource(lambda: iter(frames), 30.0, size=(32, 48), name="synthetic")
  with pytest.raises(VideoError, match="synthetic: frame 0"):
    list(wrong)


def test_write_video_rejects_bad_frames(tmp_path):
  path = tmp_path / "v.avi"
  with pytest.raises(VideoError, match="no frames"):
    write_video(path, [], 30.0)
  with pytest.raises(VideoError, match="uint8"):
    write_video(path, [np.zeros((8, 8, 3), np.float32)], 30.0)
  with pytest.raises(VideoError, match="first frame"):
    write_video(path, [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], 30.0)
