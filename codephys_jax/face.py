"""Face region of interest: Haar detection, temporal box tracking and skin masking.

The box is the detector's square enlarged ``box_scale`` (1.5) times about its
centre, re-detected every ``detect_every`` frames on a downscaled grey frame
(detection dominates the per-frame cost otherwise) and smoothed over time so
the crop does not jitter. Crops that leave the frame are padded by edge
replication, so they stay square and centred on the face.

Per-frame RGB for the unsupervised methods is the mean over skin pixels of the
crop; a frame with too few skin pixels (or no face box yet) gives NaN and
``valid=False`` rather than a made-up value.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import cv2
import numpy as np

from codephys_jax.video import VideoError

_CASCADE_FILE = "haarcascade_frontalface_default.xml"


class NoFaceError(VideoError):
  """No face was found anywhere in a video (no silent full-frame fallback)."""


@functools.lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
  path = cv2.data.haarcascades + _CASCADE_FILE
  clf = cv2.CascadeClassifier(path)
  if clf.empty():
    raise VideoError(path, "cannot load the Haar face cascade")
  return clf


@functools.lru_cache(maxsize=1)
def _clahe() -> cv2.CLAHE:
  # Local contrast equalisation keeps the eye/cheek contrast of dark faces
  # against bright backgrounds, where a global histogram equalisation fails.
  return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))


@dataclasses.dataclass(frozen=True)
class Box:
  """Square box by centre and side, in full-frame pixel coordinates (floats)."""
  cx: float
  cy: float
  side: float

  def scaled(self, factor: float) -> "Box":
    return Box(self.cx, self.cy, self.side * factor)

  def as_int(self) -> tuple[int, int, int]:
    """``(x0, y0, side)`` rounded to pixels."""
    side = max(1, int(round(self.side)))
    return int(round(self.cx - side / 2)), int(round(self.cy - side / 2)), side


def _detect(grey: np.ndarray, scale: float, offset: tuple[float, float], min_side: int,
            max_side: int | None) -> list[Box]:
  """Runs the cascade on a (downscaled) grey image; boxes mapped back to full resolution."""
  found = _cascade().detectMultiScale(
      _clahe().apply(grey), scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
      maxSize=(max_side, max_side) if max_side else (0, 0))
  return [Box(offset[0] + (x + bw / 2) / scale, offset[1] + (y + bh / 2) / scale,
              max(bw, bh) / scale) for (x, y, bw, bh) in np.reshape(found, (-1, 4))]


def _downscale(grey: np.ndarray, scale: float) -> np.ndarray:
  if scale >= 1.0:
    return grey
  h, w = grey.shape
  return cv2.resize(grey, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                    interpolation=cv2.INTER_AREA)


def detect_faces(frame_rgb: np.ndarray, *, detect_width: int = 320,
                 min_face_frac: float = 0.12) -> list[Box]:
  """All Haar detections in a frame, as square boxes in full-resolution coordinates.

  Detection runs on a grey copy downscaled to ``detect_width`` pixels wide
  (the cascade's cost grows with the pixel count, accuracy barely changes).
  ``min_face_frac`` is the smallest face side as a fraction of the frame's
  shorter side, which removes most background false positives.
  """
  h, w = frame_rgb.shape[:2]
  grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
  scale = min(1.0, detect_width / w)
  grey = _downscale(grey, scale)
  min_side = max(24, int(min_face_frac * min(grey.shape)))
  return _detect(grey, scale, (0.0, 0.0), min_side, None)


# Local search around a tracked face: region side in face sides, the face's
# side in the downscaled region, and the accepted size range.
_LOCAL_REGION = 2.2
_LOCAL_FACE_PX = 80
_LOCAL_SIZE_RANGE = (0.6, 1.6)


def detect_near(frame_rgb: np.ndarray, box: Box) -> list[Box]:
  """Detections in a region around a known face box, searched at a face-sized scale only.

  Much cheaper than :func:`detect_faces` because the region is small, downscaled
  so the face is about 80 pixels, and only scales near the known size are tried.
  """
  h, w = frame_rgb.shape[:2]
  half = _LOCAL_REGION * box.side / 2
  x0, y0 = max(0, int(box.cx - half)), max(0, int(box.cy - half))
  x1, y1 = min(w, int(box.cx + half)), min(h, int(box.cy + half))
  if x1 - x0 < 24 or y1 - y0 < 24:
    return []
  grey = cv2.cvtColor(frame_rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
  scale = min(1.0, _LOCAL_FACE_PX / box.side)
  grey = _downscale(grey, scale)
  face_px = box.side * scale
  min_side = max(20, int(_LOCAL_SIZE_RANGE[0] * face_px))
  max_side = min(min(grey.shape), int(_LOCAL_SIZE_RANGE[1] * face_px) + 1)
  if max_side < min_side:
    return []
  return _detect(grey, scale, (x0, y0), min_side, max_side)


class FaceTracker:
  """Temporal face box: periodic re-detection, smoothing, jump rejection.

  Call :meth:`update` once per frame, in order. It returns the enlarged square
  crop box, or None while no face has been seen yet.

  Args:
    detect_every: run the detector every this many frames once a face is
      tracked (every frame until the first detection).
    box_scale: enlargement of the detected square about its centre.
    smoothing: per-frame fraction of the way the box moves towards the latest
      accepted detection (1.0 = jump at once). Gliding towards the target makes
      the box move smoothly between sparse detections.
    max_jump: detections whose centre moves more than this many face sides, or
      whose size changes by more than ``max_jump + 1`` times, are treated as
      false positives ...
    patience: ... unless that many consecutive detections agree on it, which
      means the face really moved.
    detect_width: width of the downscaled detection frame.
  """

  def __init__(self, *, detect_every: int = 10, box_scale: float = 1.5, smoothing: float = 0.3,
               max_jump: float = 0.5, patience: int = 3, detect_width: int = 320):
    if detect_every < 1:
      raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    if not 0.0 < smoothing <= 1.0:
      raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    if box_scale <= 0:
      raise ValueError(f"box_scale must be > 0, got {box_scale}")
    self.detect_every = detect_every
    self.box_scale = box_scale
    self.smoothing = smoothing
    self.max_jump = max_jump
    self.patience = patience
    self.detect_width = detect_width
    self.reset()

  def reset(self) -> None:
    self._box: Box | None = None      # smoothed face box (not enlarged)
    self._target: Box | None = None   # latest accepted detection
    self._since_detect = 0
    self._rejected = 0
    self.num_detections = 0           # detector calls that returned an accepted face
    self.num_detector_calls = 0

  @property
  def found_any(self) -> bool:
    return self._target is not None

  def _plausible(self, det: Box) -> bool:
    t = self._target
    dist = math.hypot(det.cx - t.cx, det.cy - t.cy)
    ratio = det.side / t.side
    limit = 1.0 + self.max_jump
    return dist <= self.max_jump * t.side and 1.0 / limit <= ratio <= limit

  def _choose(self, dets: list[Box]) -> Box:
    if self._target is None:
      return max(dets, key=lambda b: b.side)
    t = self._target
    return min(dets, key=lambda b: math.hypot(b.cx - t.cx, b.cy - t.cy))

  def update(self, frame_rgb: np.ndarray) -> Box | None:
    """Advances one frame; returns the enlarged crop box or None if no face yet."""
    due = self._target is None or self._since_detect >= self.detect_every - 1
    if due:
      self._since_detect = 0
      self.num_detector_calls += 1
      # Search near the tracked face first; the whole frame only if that fails.
      dets = detect_near(frame_rgb, self._target) if self._target is not None else []
      if not dets:
        dets = detect_faces(frame_rgb, detect_width=self.detect_width)
      if dets:
        det = self._choose(dets)
        if self._target is None:
          self._target = self._box = det
          self._rejected = 0
          self.num_detections += 1
        elif self._plausible(det):
          self._target, self._rejected = det, 0
          self.num_detections += 1
        else:
          self._rejected += 1
          if self._rejected >= self.patience:
            self._target = self._box = det
            self._rejected = 0
            self.num_detections += 1
    else:
      self._since_detect += 1
    if self._box is None:
      return None
    a = self.smoothing
    b, t = self._box, self._target
    self._box = Box(b.cx + a * (t.cx - b.cx), b.cy + a * (t.cy - b.cy),
                    b.side + a * (t.side - b.side))
    return self._box.scaled(self.box_scale)


def crop_square(frame: np.ndarray, box: Box) -> np.ndarray:
  """Square crop of ``box``; parts outside the frame are filled by edge replication."""
  h, w = frame.shape[:2]
  x0, y0, side = box.as_int()
  x1, y1 = x0 + side, y0 + side
  cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  if cx1 <= cx0 or cy1 <= cy0:
    # Box entirely outside the frame: replicate the nearest edge pixel.
    px = frame[min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)]
    return np.broadcast_to(px, (side, side, frame.shape[2])).copy()
  crop = frame[cy0:cy1, cx0:cx1]
  pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
  if any(pads):
    crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
  return crop


# Broad YCrCb skin bounds (Y, Cr, Cb); wide enough for dark and light skin and
# coloured lighting, narrowed per face by the adaptive step below.
_SKIN_LO = np.array([35, 133, 70], np.uint8)
_SKIN_HI = np.array([250, 185, 135], np.uint8)


def skin_mask(crop_rgb: np.ndarray, *, adaptive: bool = True, tolerance: float = 3.0,
              min_tolerance: float = 6.0) -> np.ndarray:
  """Boolean skin mask ``[h, w]`` of a face crop.

  Pixels pass fixed, broad YCrCb bounds; with ``adaptive`` the Cr/Cb median of
  the passing pixels in the crop's centre (which is mostly face) defines this
  face's own skin colour, and only pixels within ``tolerance`` robust standard
  deviations (at least ``min_tolerance`` levels) of it are kept. That removes
  hair, background and lips that the fixed bounds let through.
  """
  ycc = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2YCrCb)
  mask = cv2.inRange(ycc, _SKIN_LO, _SKIN_HI) > 0
  if not adaptive:
    return mask
  h, w = mask.shape
  cy0, cy1, cx0, cx1 = h // 4, h - h // 4, w // 4, w - w // 4
  # A strided sample of the centre is enough for robust statistics.
  step = max(1, min(h, w) // 48)
  centre = ycc[cy0:cy1:step, cx0:cx1:step][mask[cy0:cy1:step, cx0:cx1:step]]
  if len(centre) < 16:
    return mask
  crcb = centre[:, 1:].astype(np.float32)
  med = np.median(crcb, axis=0)
  mad = np.median(np.abs(crcb - med), axis=0) * 1.4826
  tol = np.maximum(tolerance * mad, min_tolerance)
  lo = np.clip(np.array([_SKIN_LO[0], *(med - tol)]), 0, 255).astype(np.uint8)
  hi = np.clip(np.array([_SKIN_HI[0], *(med + tol)]), 0, 255).astype(np.uint8)
  return mask & (cv2.inRange(ycc, lo, hi) > 0)


def skin_mean_rgb(crop_rgb: np.ndarray, mask: np.ndarray | None, *,
                  min_fraction: float = 0.05) -> tuple[np.ndarray, bool]:
  """Mean RGB over masked pixels; NaN and False when under ``min_fraction`` of the crop is skin."""
  if mask is None:
    mean = cv2.mean(crop_rgb)[:3]
    return np.asarray(mean, np.float32), True
  m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)
  count = cv2.countNonZero(m)
  if count < max(1, min_fraction * m.size):
    return np.full(3, np.nan, np.float32), False
  return np.asarray(cv2.mean(crop_rgb, mask=m)[:3], np.float32), True
