"""Streaming frame sources for rPPG preprocessing.

Every source yields ``(timestamp_s, frame)`` pairs one at a time, with ``frame``
a uint8 RGB array ``[H, W, 3]``; nothing here ever holds a whole raw video in
memory. Sources:

* :func:`open_video` -- any container OpenCV/FFmpeg can decode (UBFC ``vid.avi``,
  re-encoded ``vid.mp4``, VIPL ``video.avi``, COHFACE ``data.avi`` ...).
* :class:`ImageSequenceSource` -- one image file per frame with explicit
  timestamps (PURE's ``Image<ns>.png``).
* :class:`FrameIterSource` -- frames produced by a Python callable (synthetic
  videos), timestamps ``index / fps``.
* :class:`CameraSource` -- a live camera for a fixed number of seconds,
  wall-clock timestamps; :func:`open_input` opens a file or a camera index.

:func:`write_video` writes lossless FFV1 ``.avi`` files for tests and dummy data.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

# A decoder timestamp step larger than this many nominal frame periods is
# treated as broken metadata rather than a real gap.
_MAX_TIMESTAMP_STEP_FRAMES = 10.0


class VideoError(ValueError):
  """A video or frame file cannot be used; the message names the file and the problem."""

  def __init__(self, path: str | os.PathLike, problem: str):
    self.path = str(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}")


class FrameSource:
  """Iterable of ``(timestamp_s, uint8 RGB [H, W, 3])``; also a context manager.

  Attributes:
    path: file (or directory / name) the frames come from, for error messages.
    fps: nominal frame rate.
    num_frames: nominal frame count (container metadata; may be approximate).
    size: ``(width, height)`` in pixels.
  """

  path: str
  fps: float
  num_frames: int | None

  @property
  def size(self) -> tuple[int, int]:
    raise NotImplementedError

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    raise NotImplementedError

  def close(self) -> None:
    """Releases any open decoder; iterating again reopens it."""

  def __enter__(self) -> "FrameSource":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __repr__(self) -> str:
    return (
        f"{type(self).__name__}(path={self.path!r}, fps={self.fps:.3f}, "
        f"num_frames={self.num_frames}, size={self.size})"
    )


def _check_fps(path: str, fps: float | None, what: str) -> float:
  if fps is None or not math.isfinite(fps) or fps <= 0:
    raise VideoError(path, f"invalid frame rate {fps!r} ({what}); pass fps= to override")
  return float(fps)


class VideoFileSource(FrameSource):
  """Decodes a video container with OpenCV, one frame at a time. Use :func:`open_video`."""

  def __init__(self, path: str | os.PathLike, *, fps: float | None = None):
    self.path = str(path)
    p = Path(path)
    if not p.exists():
      raise VideoError(p, "file not found")
    if not p.is_file():
      raise VideoError(p, "not a regular file")
    if p.stat().st_size == 0:
      raise VideoError(p, "empty file (0 bytes)")
    cap = self._open_capture()
    try:
      meta_fps = cap.get(cv2.CAP_PROP_FPS)
      count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
      width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
      height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
      # Probing one frame catches files whose header parses but whose stream does not.
      ok, first = cap.read()
    finally:
      cap.release()
    if not ok or first is None:
      raise VideoError(self.path, "no frames decoded (corrupt or unsupported video)")
    self._fps_override = fps is not None
    if fps is not None:
      self.fps = _check_fps(self.path, fps, "fps= override")
    else:
      self.fps = _check_fps(self.path, meta_fps, "container metadata")
    self.num_frames = int(count) if math.isfinite(count) and count > 0 else None
    self._size = (first.shape[1], first.shape[0]) if width <= 0 or height <= 0 else (width, height)
    self._cap: cv2.VideoCapture | None = None

  def _open_capture(self) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(self.path)
    if not cap.isOpened():
      cap.release()
      raise VideoError(self.path, "cannot open video (corrupt or unsupported container/codec)")
    return cap

  @property
  def size(self) -> tuple[int, int]:
    return self._size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    self.close()
    cap = self._cap = self._open_capture()
    period = 1.0 / self.fps
    # Decoder timestamps are trusted while they stay finite, non-negative and
    # strictly increasing by a plausible step; after the first bad one we fall
    # back to counting frames from the last good timestamp, which keeps the
    # sequence monotonic.
    use_decoder_times = not self._fps_override
    last_t = None
    last_good_index = -1
    last_good_t = 0.0
    index = 0
    try:
      while True:
        ok, bgr = cap.read()
        if not ok or bgr is None:
          break
        t = None
        if use_decoder_times:
          t_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
          cand = t_ms / 1000.0 if math.isfinite(t_ms) else -1.0
          sane = cand >= 0.0 and (
              last_t is None or 0.0 < cand - last_t <= _MAX_TIMESTAMP_STEP_FRAMES * period
          )
          if sane:
            t = cand
            last_good_index, last_good_t = index, cand
          else:
            use_decoder_times = False
        if t is None:
          t = (
              last_good_t + (index - max(last_good_index, 0)) * period
              if last_good_index >= 0
              else index * period
          )
        last_t = t
        yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        index += 1
    finally:
      cap.release()
      if self._cap is cap:
        self._cap = None
    if index == 0:
      raise VideoError(self.path, "no frames decoded (corrupt or unsupported video)")

  def close(self) -> None:
    if self._cap is not None:
      self._cap.release()
      self._cap = None


def open_video(path: str | os.PathLike, *, fps: float | None = None) -> VideoFileSource:
  """Opens a video file for streaming decoding.

  Args:
    path: any container OpenCV's FFmpeg backend decodes.
    fps: overrides the container frame rate (for files with missing or wrong
      metadata); timestamps are then ``index / fps``.

  Raises:
    VideoError: missing, empty, unreadable or corrupt file, or invalid frame rate.
  """
  return VideoFileSource(path, fps=fps)


class ImageSequenceSource(FrameSource):
  """One image file per frame (e.g. PURE PNGs), read lazily, with explicit timestamps."""

  def __init__(
      self,
      paths: Sequence[str | os.PathLike],
      timestamps_s: Sequence[float] | np.ndarray,
      *,
      fps: float | None = None,
      name: str | None = None,
  ):
    self.paths = [str(p) for p in paths]
    ts = np.asarray(timestamps_s, dtype=np.float64)
    self.path = (
        name
        if name is not None
        else (os.path.dirname(self.paths[0]) if self.paths else "<empty image sequence>")
    )
    if not self.paths:
      raise VideoError(self.path, "image sequence has no frames")
    if ts.shape != (len(self.paths),):
      raise VideoError(
          self.path, f"{len(self.paths)} frame files but timestamps of shape {ts.shape}"
      )
    if not np.all(np.isfinite(ts)):
      raise VideoError(self.path, "non-finite frame timestamps")
    if len(ts) > 1 and not np.all(np.diff(ts) > 0):
      bad = int(np.argmin(np.diff(ts) > 0))
      raise VideoError(self.paths[bad + 1], "frame timestamps are not strictly increasing")
    self.timestamps = ts
    if fps is None:
      fps = 1.0 / float(np.median(np.diff(ts))) if len(ts) > 1 else float("nan")
    self.fps = _check_fps(self.path, fps, "from timestamps")
    self.num_frames = len(self.paths)
    self._size: tuple[int, int] | None = None

  def _read(self, path: str) -> np.ndarray:
    if not os.path.isfile(path):
      raise VideoError(path, "frame file not found")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
      raise VideoError(path, "cannot decode frame image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

  @property
  def size(self) -> tuple[int, int]:
    if self._size is None:
      first = self._read(self.paths[0])
      self._size = (first.shape[1], first.shape[0])
    return self._size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    for p, t in zip(self.paths, self.timestamps):
      frame = self._read(p)
      if self._size is None:
        self._size = (frame.shape[1], frame.shape[0])
      elif (frame.shape[1], frame.shape[0]) != self._size:
        raise VideoError(
            p,
            f"frame size {frame.shape[1]}x{frame.shape[0]} differs from "
            f"the sequence's {self._size[0]}x{self._size[1]}",
        )
      yield float(t), frame


class FrameIterSource(FrameSource):
  """Frames from a callable returning a fresh iterator each time (synthetic videos).

  Timestamps are ``index / fps``. ``factory`` must be repeatable (same frames on
  every call) so the source can be iterated more than once.
  """

  def __init__(
      self,
      factory: Callable[[], Iterable[np.ndarray]],
      fps: float,
      *,
      size: tuple[int, int],
      num_frames: int | None = None,
      name: str = "<frames>",
  ):
    self.path = name
    self.fps = _check_fps(name, fps, "FrameIterSource")
    self.num_frames = num_frames
    self._size = (int(size[0]), int(size[1]))
    self._factory = factory

  @property
  def size(self) -> tuple[int, int]:
    return self._size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    for i, frame in enumerate(self._factory()):
      if frame.dtype != np.uint8 or frame.shape != (self._size[1], self._size[0], 3):
        raise VideoError(
            self.path,
            f"frame {i} has shape {frame.shape} dtype {frame.dtype}, "
            f"expected uint8 {(self._size[1], self._size[0], 3)}",
        )
      yield i / self.fps, frame


_FALLBACK_CODEC = "png "


class CameraSource(FrameSource):
  """Frames from a camera (``cv2.VideoCapture(index)``) for ``seconds``, wall-clock timestamps."""

  def __init__(self, index: int, *, seconds: float):
    self.path = f"camera:{index}"
    self.index = index
    self.seconds = float(seconds)
    cap = cv2.VideoCapture(index)
    try:
      if not cap.isOpened():
        raise VideoError(self.path, "cannot open camera (no such device or no permission)")
      fps = cap.get(cv2.CAP_PROP_FPS)
      self.fps = float(fps) if math.isfinite(fps) and fps > 0 else 30.0
      self._size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
      cap.release()
    self.num_frames = int(round(self.seconds * self.fps))

  @property
  def size(self) -> tuple[int, int]:
    return self._size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    cap = cv2.VideoCapture(self.index)
    if not cap.isOpened():
      raise VideoError(self.path, "cannot open camera")
    try:
      t0 = time.monotonic()
      while True:
        ok, bgr = cap.read()
        t = time.monotonic() - t0
        if not ok or bgr is None:
          raise VideoError(self.path, "camera stopped delivering frames")
        if t > self.seconds:
          break
        yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
      cap.release()


def open_input(video: str, *, seconds: float = 30.0) -> FrameSource:
  """A video file path, or a camera index (digits only) recorded for ``seconds``."""
  if video.isdigit() and not os.path.exists(video):
    return CameraSource(int(video), seconds=seconds)
  return open_video(video)


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, codec: str = "FFV1"
) -> str:
  """Writes uint8 RGB frames to a video file; returns the fourcc actually used.

  FFV1 in ``.avi`` is lossless, so a round trip returns identical frames. If
  the requested codec cannot be opened by this OpenCV build, the lossless PNG
  fourcc is used instead.
  """
  path = str(path)
  fps = _check_fps(path, fps, "write_video")
  writer = None
  used = codec
  count = 0
  shape = None
  try:
    for frame in frames:
      frame = np.asarray(frame)
      if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise VideoError(
            path, f"frame {count}: expected uint8 [H, W, 3], got " f"{frame.dtype} {frame.shape}"
        )
      if writer is None:
        shape = frame.shape
        size = (frame.shape[1], frame.shape[0])
        for used in dict.fromkeys([codec, _FALLBACK_CODEC]):
          writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*used), fps, size)
          if writer.isOpened():
            break
          writer.release()
          writer = None
        if writer is None:
          raise VideoError(
              path, f"cannot open a video writer with codec {codec!r} " f"or {_FALLBACK_CODEC!r}"
          )
      elif frame.shape != shape:
        raise VideoError(path, f"frame {count} has shape {frame.shape}, first frame {shape}")
      writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
      count += 1
  finally:
    if writer is not None:
      writer.release()
  if count == 0:
    raise VideoError(path, "no frames to write")
  return used
