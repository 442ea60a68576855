"""Temporal face box (:class:`FaceTracker`); its crop is :func:`face.box.crop_square`.

The box is the detector's square enlarged ``box_scale`` (1.5) times about its
centre, re-detected every ``detect_every`` frames (near the tracked face first,
on a small region) and smoothed over time so the crop does not jitter. Crops
that leave the frame are padded by edge replication, so they stay square and
centred on the face.
"""

from __future__ import annotations

import math

import numpy as np

from codephys_jax.face.box import Box
from codephys_jax.face.detectors import DEFAULT_DETECTOR, get_detector


class FaceTracker:
  """Temporal face box: periodic re-detection, smoothing, jump rejection.

  Call :meth:`update` once per frame, in order. It returns the enlarged square
  crop box, or None while no face has been seen yet. After a first detection a
  box is returned on every frame (carried over when later calls find nothing);
  :attr:`detected_fraction` counts only frames backed by an accepted detection. Landmarks of the latest
  accepted detection are kept relative to the face box and smoothed with it,
  so between detections they follow the box.

  Args:
    detector: registry name of the detector (see :data:`DETECTORS`).
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
    detect_width: width of the downscaled detection frame (Haar).
  """

  def __init__(
      self,
      *,
      detector: str = DEFAULT_DETECTOR,
      detect_every: int = 5,
      box_scale: float = 1.5,
      smoothing: float = 0.05,
      max_jump: float = 0.5,
      patience: int = 3,
      detect_width: int = 320,
  ):
    if detect_every < 1:
      raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    if not 0.0 < smoothing <= 1.0:
      raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    if box_scale <= 0:
      raise ValueError(f"box_scale must be > 0, got {box_scale}")
    self.detector = get_detector(detector)
    self.detect_every = detect_every
    self.box_scale = box_scale
    self.smoothing = smoothing
    self.max_jump = max_jump
    self.patience = patience
    self.detect_width = detect_width
    self.reset()

  def reset(self) -> None:
    self._box: Box | None = None  # smoothed face box (not enlarged)
    self._target: Box | None = None  # latest accepted detection
    self._rel: np.ndarray | None = None  # smoothed landmarks, relative to _box
    self._target_rel: np.ndarray | None = None  # landmarks of _target, relative to it
    self._since_detect = 0
    self._rejected = 0
    self.num_detections = 0  # detector calls that returned an accepted face
    self.num_detector_calls = 0
    # Whether the latest detector call accepted a face; frames in between carry
    # the box over, so a box on a frame alone is no evidence of a face there.
    self.detected = False
    self.num_frames = 0
    self.num_detected_frames = 0  # frames whose latest detector call found the face

  @property
  def found_any(self) -> bool:
    return self._target is not None

  @property
  def detected_fraction(self) -> float:
    """Fraction of frames so far whose latest detector call accepted a face."""
    return self.num_detected_frames / self.num_frames if self.num_frames else 0.0

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

  def _accept(self, det: Box, *, jump: bool) -> None:
    self._target = det
    self._target_rel = (
        None
        if det.landmarks is None
        else ((np.asarray(det.landmarks, np.float64) - (det.cx, det.cy)) / det.side)
    )
    if jump or self._rel is None or self._target_rel is None:
      self._box, self._rel = det, self._target_rel
    self._rejected = 0
    self.num_detections += 1

  def update(self, frame_rgb: np.ndarray) -> Box | None:
    """Advances one frame; returns the enlarged crop box or None if no face yet.

    The returned box carries the smoothed landmarks (full-frame pixels) when
    the detector gives them.
    """
    due = self._target is None or self._since_detect >= self.detect_every - 1
    if due:
      self._since_detect = 0
      self.num_detector_calls += 1
      # Search near the tracked face first; the whole frame only if that fails.
      dets = self.detector.detect_near(frame_rgb, self._target) if self._target is not None else []
      if not dets:
        dets = self.detector.detect(frame_rgb, detect_width=self.detect_width)
      accepted = self.num_detections
      if dets:
        det = self._choose(dets)
        if self._target is None:
          self._accept(det, jump=True)
        elif self._plausible(det):
          self._accept(det, jump=False)
        else:
          self._rejected += 1
          if self._rejected >= self.patience:
            self._accept(det, jump=True)
      self.detected = self.num_detections > accepted
    else:
      self._since_detect += 1
    self.num_frames += 1
    self.num_detected_frames += self.detected
    if self._box is None:
      return None
    a = self.smoothing
    b, t = self._box, self._target
    box = Box(b.cx + a * (t.cx - b.cx), b.cy + a * (t.cy - b.cy), b.side + a * (t.side - b.side))
    if self._rel is not None and self._target_rel is not None:
      self._rel = self._rel + a * (self._target_rel - self._rel)
    self._box = box
    landmarks = None
    if self._rel is not None:
      pts = self._rel * box.side + (box.cx, box.cy)
      landmarks = tuple((float(x), float(y)) for x, y in pts)
    return Box(box.cx, box.cy, box.side * self.box_scale, landmarks)
