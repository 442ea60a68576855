"""Face region of interest: detection, temporal box tracking, landmark ROI and skin masking.

Detectors are chosen by name (:func:`get_detector`, :data:`DETECTORS`):

* ``'blazeface'`` (default): MediaPipe's BlazeFace short-range model, vendored
  in ``codephys_jax/assets`` (its source, licence and sha256 are listed there; the
  hash is checked at load) and run by OpenCV's DNN module, which reads TFLite
  on OpenCV 4.8+ and 5.x. It also gives six keypoints (eyes, nose tip, mouth,
  ear tragions) that place the landmark ROI.
* ``'haar'``: OpenCV's frontal-face Haar cascade. Only where the OpenCV build
  has ``CascadeClassifier`` and its data files (4.x; OpenCV 5 has neither).

The box is the detector's square enlarged ``box_scale`` (1.5) times about its
centre, re-detected every ``detect_every`` frames (near the tracked face first,
on a small region) and smoothed over time so the crop does not jitter. Crops
that leave the frame are padded by edge replication, so they stay square and
centred on the face.

Per-frame RGB for the unsupervised methods is the mean over skin pixels of
either the whole crop (``'box'``) or three landmark-placed patches, forehead
and both cheeks (``'landmarks'``; :func:`landmark_polygons`), which keep away
from eyes, brows, nostrils, mouth, hair and background. A frame with too few
skin pixels (or no face box yet) gives NaN and ``valid=False`` rather than a
made-up value.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from codephys_jax.video import VideoError

_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_ASSETS = Path(__file__).resolve().parent / "assets"


class NoFaceError(VideoError):
  """No face was found anywhere in a video (no silent full-frame fallback)."""


class DetectorUnavailableError(RuntimeError):
  """The named detector cannot run with this OpenCV build (e.g. Haar on OpenCV 5)."""


@dataclasses.dataclass(frozen=True)
class Box:
  """Square box by centre and side, in full-frame pixel coordinates (floats).

  ``landmarks`` (detectors that give keypoints) are ``(x, y)`` pairs in
  full-frame pixels, in the detector's keypoint order; they do not take part
  in comparisons.
  """

  cx: float
  cy: float
  side: float
  landmarks: tuple[tuple[float, float], ...] | None = dataclasses.field(default=None, compare=False)

  def scaled(self, factor: float) -> "Box":
    return Box(self.cx, self.cy, self.side * factor, self.landmarks)

  def as_int(self) -> tuple[int, int, int]:
    """``(x0, y0, side)`` rounded to pixels."""
    side = max(1, int(round(self.side)))
    return int(round(self.cx - side / 2)), int(round(self.cy - side / 2)), side


def _downscale(grey: np.ndarray, scale: float) -> np.ndarray:
  if scale >= 1.0:
    return grey
  h, w = grey.shape[:2]
  return cv2.resize(
      grey,
      (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
      interpolation=cv2.INTER_AREA,
  )


# Local search around a tracked face: region side in face sides; Haar also
# downscales the region so the face is about _LOCAL_FACE_PX pixels and accepts
# only sizes in _LOCAL_SIZE_RANGE of the known face.
_LOCAL_REGION = 2.2
_LOCAL_FACE_PX = 80
_LOCAL_SIZE_RANGE = (0.6, 1.6)


class FaceDetector:
  """Interface of a face detector: full-frame search and a cheaper search near a known face.

  Attributes:
    name: registry name.
    has_landmarks: whether returned boxes carry keypoints.
  """

  name: str = ""
  has_landmarks: bool = False

  def detect(
      self, frame_rgb: np.ndarray, *, detect_width: int = 320, min_face_frac: float = 0.12
  ) -> list[Box]:
    """All faces in an RGB frame as square boxes in full-resolution coordinates."""
    raise NotImplementedError

  def detect_near(self, frame_rgb: np.ndarray, box: Box) -> list[Box]:
    """Faces in a region around a known face box (sizes near the known one)."""
    raise NotImplementedError


class HaarDetector(FaceDetector):
  """OpenCV's frontal-face Haar cascade on a CLAHE-equalised, downscaled grey frame."""

  name = "haar"
  has_landmarks = False

  def __init__(self):
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
      raise DetectorUnavailableError(
          f"detector 'haar' needs cv2.CascadeClassifier and its data files, which OpenCV "
          f"{cv2.__version__} does not have; use detector='blazeface'"
      )
    path = cv2.data.haarcascades + _CASCADE_FILE
    self._clf = cv2.CascadeClassifier(path)
    if self._clf.empty():
      raise VideoError(path, "cannot load the Haar face cascade")
    # Local contrast equalisation keeps the eye/cheek contrast of dark faces
    # against bright backgrounds, where a global histogram equalisation fails.
    self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

  def _run(
      self,
      grey: np.ndarray,
      scale: float,
      offset: tuple[float, float],
      min_side: int,
      max_side: int | None,
  ) -> list[Box]:
    found = self._clf.detectMultiScale(
        self._clahe.apply(grey),
        scaleFactor=1.1,
        minNeighbors=5,
        minSize=(min_side, min_side),
        maxSize=(max_side, max_side) if max_side else (0, 0),
    )
    return [
        Box(offset[0] + (x + bw / 2) / scale, offset[1] + (y + bh / 2) / scale, max(bw, bh) / scale)
        for (x, y, bw, bh) in np.reshape(found, (-1, 4))
    ]

  def detect(
      self, frame_rgb: np.ndarray, *, detect_width: int = 320, min_face_frac: float = 0.12
  ) -> list[Box]:
    # The cascade's cost grows with the pixel count, accuracy barely changes.
    h, w = frame_rgb.shape[:2]
    scale = min(1.0, detect_width / w)
    grey = _downscale(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY), scale)
    min_side = max(24, int(min_face_frac * min(grey.shape)))
    return self._run(grey, scale, (0.0, 0.0), min_side, None)

  def detect_near(self, frame_rgb: np.ndarray, box: Box) -> list[Box]:
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
    return self._run(grey, scale, (x0, y0), min_side, max_side)


BLAZEFACE_FILE = "blazeface_short_range.tflite"
BLAZEFACE_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"
# Keypoint order of BlazeFace (the subject's right eye is on the image's left
# for a frontal face).
BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
_BLAZE_INPUT = 128


def _blazeface_anchors() -> np.ndarray:
  """Anchor centres ``[896, 2]`` in [0, 1] of BlazeFace short-range's SSD head.

  Two anchors per cell on the stride-8 grid (16 x 16), six per cell on the
  stride-16 grid (8 x 8: three layers of two share that stride), in row-major
  cell order; the model regresses offsets in input pixels from these centres
  with a fixed anchor size of one input side.
  """
  out = []
  for stride, per_cell in ((8, 2), (16, 6)):
    n = _BLAZE_INPUT // stride
    ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
    cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
    out.append(np.repeat(cells, per_cell, axis=0))
  return np.concatenate(out).astype(np.float32)


def verified_asset(name: str, sha256: str) -> bytes:
  """Bytes of a vendored model file, after checking its sha256.

  Raises:
    VideoError: the file is missing or its hash differs (e.g. a Git LFS
      pointer or a truncated copy), naming the file.
  """
  path = _ASSETS / name
  if not path.is_file():
    raise VideoError(path, "vendored face model file is missing")
  data = path.read_bytes()
  digest = hashlib.sha256(data).hexdigest()
  if digest != sha256:
    raise VideoError(
        path,
        f"sha256 {digest} differs from the recorded {sha256} "
        "(corrupt or replaced model file; its source and sha256 are in codephys_jax/assets/)",
    )
  return data


class BlazeFaceDetector(FaceDetector):
  """MediaPipe BlazeFace (short range) through ``cv2.dnn``, with six keypoints per face.

  Input is the frame letterboxed (zero padding at the bottom/right) to a
  square and resized to 128 x 128, RGB scaled to [-1, 1]. Detections above
  ``score_threshold`` are merged by weighted non-maximum suppression (the
  overlapping boxes of one face are averaged, weighted by score), which is
  steadier over time than keeping only the best box.

  BlazeFace's box runs from the brows to the chin, tighter than the Haar
  square; its side is multiplied by ``side_factor`` so that ``box_scale``
  means the same crop for both detectors (measured on the synthetic faces:
  the Haar square is 1.19x BlazeFace's box side, centred 0.1 sides higher).
  """

  name = "blazeface"
  has_landmarks = True

  def __init__(
      self,
      *,
      score_threshold: float = 0.5,
      nms_iou: float = 0.3,
      side_factor: float = 1.19,
      centre_shift: float = -0.1,
  ):
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromTFLite"):
      raise DetectorUnavailableError(
          f"detector 'blazeface' needs cv2.dnn.readNetFromTFLite (OpenCV >= 4.8); this is "
          f"OpenCV {cv2.__version__}"
      )
    verified_asset(BLAZEFACE_FILE, BLAZEFACE_SHA256)
    # Loaded by path: OpenCV 5.0's from-buffer reader ignores the engine argument.
    self._model = str(_ASSETS / BLAZEFACE_FILE)
    self._anchors = _blazeface_anchors()
    self.score_threshold = score_threshold
    self.nms_iou = nms_iou
    self.side_factor = side_factor
    self.centre_shift = centre_shift
    # cv2.dnn.Net is not safe to share between threads; one per thread.
    self._local = threading.local()
    self._net()  # fail at construction, not at the first frame

  def _net(self) -> "cv2.dnn.Net":
    net = getattr(self._local, "net", None)
    if net is None:
      if hasattr(cv2.dnn, "ENGINE_CLASSIC"):
        # OpenCV 5's new engine reports only one of the model's two outputs.
        net = cv2.dnn.readNetFromTFLite(self._model, cv2.dnn.ENGINE_CLASSIC)
      else:
        net = cv2.dnn.readNetFromTFLite(self._model)
      self._local.net = net
    return net

  def raw(self, square_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs the model on a square RGB image.

    Returns:
      ``(scores [K], boxes [K, 4] as cx, cy, w, h, keypoints [K, 6, 2])`` after
      thresholding and weighted NMS, coordinates in [0, 1] of the square.
    """
    img = cv2.resize(square_rgb, (_BLAZE_INPUT, _BLAZE_INPUT), interpolation=cv2.INTER_AREA)
    blob = cv2.dnn.blobFromImage(
        img, 1.0 / 127.5, (_BLAZE_INPUT, _BLAZE_INPUT), (127.5, 127.5, 127.5), swapRB=False
    )
    net = self._net()
    net.setInput(blob)
    logits, reg = net.forward(["classificators", "regressors"])
    logits = np.clip(logits.reshape(-1).astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= self.score_threshold)
    if len(keep) == 0:
      return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32)
    reg = reg.reshape(-1, 16)[keep] / _BLAZE_INPUT
    anchors = self._anchors[keep]
    boxes = np.concatenate([reg[:, :2] + anchors, reg[:, 2:4]], axis=1)
    kps = reg[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
    return _weighted_nms(scores[keep], boxes, kps, self.nms_iou)

  def _to_boxes(self, scores, boxes, kps, scale: float, offset: tuple[float, float]) -> list[Box]:
    out = []
    for (cx, cy, w, h), pts in zip(boxes, kps):
      side = max(w, h) * scale
      out.append(
          Box(
              offset[0] + cx * scale,
              offset[1] + cy * scale + self.centre_shift * side,
              side * self.side_factor,
              tuple((offset[0] + float(x) * scale, offset[1] + float(y) * scale) for x, y in pts),
          )
      )
    return out

  def detect(
      self, frame_rgb: np.ndarray, *, detect_width: int = 320, min_face_frac: float = 0.12
  ) -> list[Box]:
    del detect_width  # the model's input is always 128 x 128
    h, w = frame_rgb.shape[:2]
    side = max(h, w)
    square = cv2.copyMakeBorder(
        frame_rgb, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    found = self._to_boxes(*self.raw(square), float(side), (0.0, 0.0))
    return [b for b in found if b.side >= min_face_frac * min(h, w)]

  def detect_near(self, frame_rgb: np.ndarray, box: Box) -> list[Box]:
    region = Box(box.cx, box.cy, _LOCAL_REGION * box.side)
    x0, y0, side = region.as_int()
    crop = crop_square(frame_rgb, region)
    found = self._to_boxes(*self.raw(crop), float(side), (float(x0), float(y0)))
    lo, hi = _LOCAL_SIZE_RANGE
    return [b for b in found if lo * box.side <= b.side <= hi * box.side]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
  """IoU of one ``(cx, cy, w, h)`` box with each of ``others``."""
  lo = np.maximum(box[:2] - box[2:] / 2, others[:, :2] - others[:, 2:] / 2)
  hi = np.minimum(box[:2] + box[2:] / 2, others[:, :2] + others[:, 2:] / 2)
  inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
  union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
  return inter / np.maximum(union, 1e-12)


def _weighted_nms(scores: np.ndarray, boxes: np.ndarray, kps: np.ndarray, iou: float):
  order = np.argsort(-scores)
  scores, boxes, kps = scores[order], boxes[order], kps[order]
  alive = np.ones(len(scores), bool)
  out_s, out_b, out_k = [], [], []
  for i in range(len(scores)):
    if not alive[i]:
      continue
    group = alive & (_iou(boxes[i], boxes) > iou)
    group[i] = True
    alive &= ~group
    wgt = scores[group] / scores[group].sum()
    out_s.append(scores[i])
    out_b.append(wgt @ boxes[group])
    out_k.append(np.tensordot(wgt, kps[group], axes=1))
  return np.asarray(out_s, np.float32), np.asarray(out_b, np.float32), np.asarray(out_k, np.float32)


# Name -> detector class. Instances are cached per name (model loading is the
# expensive part; inference state is per thread).
DETECTORS: dict[str, Callable[[], FaceDetector]] = {
    "blazeface": BlazeFaceDetector,
    "haar": HaarDetector,
}
DEFAULT_DETECTOR = "blazeface"


@functools.lru_cache(maxsize=None)
def get_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
  """The detector registered under ``name``.

  Raises:
    ValueError: unknown name.
    DetectorUnavailableError: this OpenCV build cannot run it.
  """
  if name not in DETECTORS:
    raise ValueError(f"unknown face detector {name!r}; choose one of {sorted(DETECTORS)}")
  return DETECTORS[name]()


def available_detectors() -> list[str]:
  """Names of the detectors this OpenCV build can run."""
  names = []
  for name in DETECTORS:
    try:
      get_detector(name)
    except DetectorUnavailableError:
      continue
    names.append(name)
  return names


def detect_faces(
    frame_rgb: np.ndarray,
    *,
    detector: str = DEFAULT_DETECTOR,
    detect_width: int = 320,
    min_face_frac: float = 0.12,
) -> list[Box]:
  """All detections in a frame, as square boxes in full-resolution coordinates.

  ``detect_width`` is the width of the downscaled grey frame Haar searches;
  ``min_face_frac`` is the smallest face side as a fraction of the frame's
  shorter side, which removes most background false positives.
  """
  return get_detector(detector).detect(
      frame_rgb, detect_width=detect_width, min_face_frac=min_face_frac
  )


def detect_near(frame_rgb: np.ndarray, box: Box, *, detector: str = DEFAULT_DETECTOR) -> list[Box]:
  """Detections in a region around a known face box, at sizes near the known one.

  Much cheaper than :func:`detect_faces` because the region is small.
  """
  return get_detector(detector).detect_near(frame_rgb, box)


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


# Landmark ROI patches as quadrilaterals in a face frame: x along the eye line
# in inter-ocular distances from the eyes' midpoint, y towards the mouth in
# eye-to-mouth distances. Forehead: between the brows (~0.3 down to the eyes)
# and the hairline (~1.0); cheeks: below the eye sockets, lateral to the nose
# (nostrils reach ~0.2) and above the lips (~0.85).
LANDMARK_PATCHES: dict[str, tuple[tuple[float, float], ...]] = {
    "forehead": ((-0.4, -0.72), (0.4, -0.72), (0.4, -0.45), (-0.4, -0.45)),
    "right_cheek": ((-0.68, 0.3), (-0.27, 0.3), (-0.27, 0.75), (-0.68, 0.75)),
    "left_cheek": ((0.27, 0.3), (0.68, 0.3), (0.68, 0.75), (0.27, 0.75)),
}


def landmark_polygons(landmarks) -> list[np.ndarray]:
  """Forehead and cheek patches ``[4, 2]`` (full-frame pixels) from BlazeFace keypoints.

  The face frame follows the eyes and mouth, so the patches turn, shrink and
  narrow with roll, scale and yaw of the head.
  """
  pts = np.asarray(landmarks, np.float64)
  right_eye, left_eye, mouth = pts[0], pts[1], pts[3]
  mid = (right_eye + left_eye) / 2
  ex = left_eye - right_eye
  # Downwards: the eye-to-mouth vector without its eye-line component, so a
  # turned head does not shear the patches.
  down = mouth - mid
  down = down - ex * (down @ ex) / max(ex @ ex, 1e-12)
  return [
      mid + np.asarray(q)[:, :1] * ex + np.asarray(q)[:, 1:] * down
      for q in LANDMARK_PATCHES.values()
  ]


def landmark_mean_rgb(
    frame_rgb: np.ndarray, landmarks, *, use_skin_mask: bool = False, min_fraction: float = 0.05
) -> tuple[np.ndarray, bool]:
  """Mean RGB over the forehead and cheek patches (optionally only their skin pixels).

  Returns NaN and False when the patches have fewer than ``min_fraction`` of
  their area inside the frame (and on skin, with ``use_skin_mask``).
  """
  polys = landmark_polygons(landmarks)
  h, w = frame_rgb.shape[:2]
  allpts = np.concatenate(polys)
  x0, y0 = np.floor(allpts.min(axis=0)).astype(int)
  x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 1
  full_area = sum(cv2.contourArea(p.astype(np.float32)) for p in polys)
  cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  nan = np.full(3, np.nan, np.float32)
  if cx1 <= cx0 or cy1 <= cy0 or full_area < 1:
    return nan, False
  region = frame_rgb[cy0:cy1, cx0:cx1]
  mask = np.zeros(region.shape[:2], np.uint8)
  # Fixed-point vertices (4 fractional bits) keep the patch edges sub-pixel.
  cv2.fillPoly(
      mask, [np.round((p - (cx0, cy0)) * 16).astype(np.int32) for p in polys], 255, shift=4
  )
  if use_skin_mask:
    mask[~skin_mask(region)] = 0
  if cv2.countNonZero(mask) < max(1.0, min_fraction * full_area):
    return nan, False
  return np.asarray(cv2.mean(region, mask=mask)[:3], np.float32), True


# Broad YCrCb skin bounds (Y, Cr, Cb); wide enough for dark and light skin and
# coloured lighting, narrowed per face by the adaptive step below.
_SKIN_LO = np.array([35, 133, 70], np.uint8)
_SKIN_HI = np.array([250, 185, 135], np.uint8)


def skin_mask(
    crop_rgb: np.ndarray,
    *,
    adaptive: bool = True,
    tolerance: float = 3.0,
    min_tolerance: float = 6.0,
) -> np.ndarray:
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


def skin_mean_rgb(
    crop_rgb: np.ndarray, mask: np.ndarray | None, *, min_fraction: float = 0.05
) -> tuple[np.ndarray, bool]:
  """Mean RGB over masked pixels; NaN and False when under ``min_fraction`` of the crop is skin."""
  if mask is None:
    mean = cv2.mean(crop_rgb)[:3]
    return np.asarray(mean, np.float32), True
  m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)
  count = cv2.countNonZero(m)
  if count < max(1, min_fraction * m.size):
    return np.full(3, np.nan, np.float32), False
  return np.asarray(cv2.mean(crop_rgb, mask=m)[:3], np.float32), True
