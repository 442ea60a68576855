"""Face detectors by name (:func:`get_detector`, :data:`DETECTORS`) and the :class:`Box` they return.

* ``'blazeface'`` (default): MediaPipe's BlazeFace short-range model, vendored
  in ``codephys_jax/assets`` (its source, licence and sha256 are listed there; the
  hash is checked at load) and run by OpenCV's DNN module, which reads TFLite
  on OpenCV 4.8+ and 5.x. It also gives six keypoints (eyes, nose tip, mouth,
  ear tragions) that place the landmark ROI.
* ``'haar'``: OpenCV's frontal-face Haar cascade. Only where the OpenCV build
  has ``CascadeClassifier`` and its data files (4.x; OpenCV 5 has neither).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from codephys_jax.face.box import Box, crop_square
from codephys_jax.video import VideoError

_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_ASSETS = Path(__file__).resolve().parent.parent / "assets"


class NoFaceError(VideoError):
  """No face was found anywhere in a video (no silent full-frame fallback)."""


class DetectorUnavailableError(RuntimeError):
  """The named detector cannot run with this OpenCV build (e.g. Haar on OpenCV 5)."""


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
