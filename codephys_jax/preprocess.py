"""One streaming pass per video: face crop, skin-mean RGB, resampling to a common rate.

:func:`preprocess_video` reads a :class:`~codephys_jax.video.FrameSource` once,
frame by frame. Per source frame it updates the face tracker, crops the
enlarged square box and takes the skin-mean RGB of the crop at full
resolution. Only the small uint8 crops resized to ``size x size`` are kept
for the whole video (never the raw frames, never floats of the video).

Resampling to ``target_fps`` uses the source timestamps: each output time
takes the latest source frame at or before it (decided as frames stream in,
so nothing is buffered), and the RGB trace is linearly interpolated. Labels
(PPG) are put on the same output times with :func:`align_labels`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import cv2
import numpy as np

from codephys_jax import signal
from codephys_jax import face as face_lib
from codephys_jax.face import FaceTracker, NoFaceError, crop_square, skin_mask, skin_mean_rgb
from codephys_jax.video import FrameSource, VideoError

# A source frame counts as "at or before" an output time if it is at most this
# fraction of an output period late; decoders round timestamps to milliseconds,
# which would otherwise pick the previous frame for equal-rate videos.
_TIME_TOLERANCE_FRAMES = 0.05


def time_tolerance(fps: float) -> float:
  """How late (s) a source frame may be and still count as at an output time of `fps`."""
  return _TIME_TOLERANCE_FRAMES / fps + 1e-12


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
  """Settings of the per-video preprocessing pass (all of them feed the fingerprint).

  Attributes:
    size: side of the stored square crop in pixels.
    target_fps: common output frame rate.
    detector: face detector name (``face.DETECTORS``): 'blazeface' (default,
      OpenCV 4 and 5) or 'haar' (OpenCV 4 only).
    rgb_roi: where the RGB trace is averaged inside the tracked face:
      'landmarks' (forehead and both cheeks placed by the detector's
      keypoints, away from eyes, brows, nostrils, mouth, hair and background)
      or 'box' (the whole enlarged crop). The stored crops are the box either way.
    detect_every: face re-detection period in source frames.
    box_scale: enlargement of the detected face square about its centre.
    roi: 'face' (default; the enlarged face box; a video without a face is an
      error), 'landmark_patches' (the forehead and cheek patches of the
      landmark ROI warped into one image, skin only: `face.landmark_patch_mosaic`)
      or 'full_frame' (whole frame resized to ``size x size``, only when asked
      for explicitly).
    skin_mask: average RGB over the adaptive skin mask's pixels of the ROI only.
      Off by default: the landmark patches already avoid non-skin, and the
      mask flickers with compression (per-frame JPEG at quality 8 tripled the
      landmark ROI's POS error in benchmarks/roi_hard.py); with rgb_roi='box'
      turn it on (it removes the background and hair in the crop).
    smoothing: per-frame box smoothing factor, see :class:`FaceTracker`. With
      the default 0.05 and a detection every 5 frames, the box follows the head
      with a time constant of 20 frames (0.67 s at 30 fps); at 0.3 and every 10
      frames, detector jitter moved the small crops enough to hide the pulse
      (POS on the centre of the 16 px crops: MAE 6.15 -> 0.44 bpm over the 24
      synthetic videos).
    detect_width: width of the downscaled frame the detector runs on.
    min_skin_fraction: frames with fewer skin pixels than this fraction of the
      crop are rejected (NaN RGB, ``valid=False``).
  """

  size: int = 72
  target_fps: float = 30.0
  detector: str = face_lib.DEFAULT_DETECTOR
  rgb_roi: str = "landmarks"
  detect_every: int = 5
  box_scale: float = 1.5
  roi: str = "face"
  skin_mask: bool = False
  smoothing: float = 0.05
  detect_width: int = 320
  min_skin_fraction: float = 0.05

  def __post_init__(self):
    if self.roi not in _ROIS:
      raise ValueError(f"roi must be one of {sorted(_ROIS)}, got {self.roi!r}")
    if self.detector not in face_lib.DETECTORS:
      raise ValueError(
          f"detector must be one of {sorted(face_lib.DETECTORS)}, " f"got {self.detector!r}"
      )
    if self.rgb_roi not in RGB_ROIS:
      raise ValueError(f"rgb_roi must be one of {sorted(RGB_ROIS)}, got {self.rgb_roi!r}")
    if self.roi == "landmark_patches" and (
        not face_lib.DETECTORS[self.detector].has_landmarks or self.size % 2
    ):
      raise ValueError(
          f"roi='landmark_patches' needs a detector with keypoints ({self.detector!r} "
          f"has {'some' if face_lib.DETECTORS[self.detector].has_landmarks else 'none'}) "
          f"and an even size (got {self.size})"
      )
    if (
        self.roi in ("face", "landmark_patches")
        and self.rgb_roi == "landmarks"
        and not face_lib.DETECTORS[self.detector].has_landmarks
    ):
      raise ValueError(
          f"rgb_roi='landmarks' needs a detector with keypoints; "
          f"{self.detector!r} has none (use rgb_roi='box')"
      )
    if self.size < 1:
      raise ValueError(f"size must be >= 1, got {self.size}")
    if not self.target_fps > 0:
      raise ValueError(f"target_fps must be > 0, got {self.target_fps}")

  def fingerprint(self) -> str:
    """Stable 12-hex-digit hash of all fields, to key prepared datasets."""
    payload = json.dumps({"type": "PreprocessConfig", **dataclasses.asdict(self)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclasses.dataclass
class PreprocessedVideo:
  """Output of :func:`preprocess_video`, all on the common time grid.

  Attributes:
    frames: uint8 [N, size, size, 3] RGB crops.
    rgb: float32 [N, 3] skin-mean RGB (NaN where rejected).
    valid: bool [N]; False where no face box yet or too little skin.
    timestamps: float64 [N], seconds, ``t0 + k / fps`` on the source clock.
    fps: output frame rate (the config's ``target_fps``).
    source_fps: nominal frame rate of the source.
    source_path: the source's path, for provenance and error messages.
    num_source_frames: frames decoded from the source.
    source_timestamps: float64 [num_source_frames], each decoded frame's time
      (the source's clock), which per-frame labels share.
    detected_fraction: fraction of source frames whose latest face detector
      call found a face (``roi='face'``; None for ``'full_frame'``). Lower than
      ``valid.mean()`` when the tracker carries a box over frames without one.
  """

  frames: np.ndarray
  rgb: np.ndarray
  valid: np.ndarray
  timestamps: np.ndarray
  fps: float
  source_fps: float
  source_path: str
  num_source_frames: int
  source_timestamps: np.ndarray | None = None
  detected_fraction: float | None = None

  def __len__(self) -> int:
    return len(self.timestamps)


class _FaceROI:
  """Tracked, enlarged square face crop and the RGB mean of its box or landmark patches."""

  def __init__(self, cfg: PreprocessConfig):
    self.cfg = cfg
    self.tracker = FaceTracker(
        detector=cfg.detector,
        detect_every=cfg.detect_every,
        box_scale=cfg.box_scale,
        smoothing=cfg.smoothing,
        detect_width=cfg.detect_width,
    )

  def __call__(self, frame: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, bool]:
    """``(crop or None, rgb, ok)`` for one source frame."""
    box = self.tracker.update(frame)
    if box is None:
      return None, np.full(3, np.nan, np.float32), False
    cfg = self.cfg
    if cfg.roi == "landmark_patches":
      crop = face_lib.landmark_patch_mosaic(frame, box.landmarks, cfg.size)
    else:
      crop = crop_square(frame, box)
    if cfg.rgb_roi == "landmarks":
      rgb, ok = face_lib.landmark_mean_rgb(
          frame, box.landmarks, use_skin_mask=cfg.skin_mask, min_fraction=cfg.min_skin_fraction
      )
    else:
      mask = skin_mask(crop) if cfg.skin_mask else None
      rgb, ok = skin_mean_rgb(crop, mask, min_fraction=cfg.min_skin_fraction)
    return crop, rgb, ok

  @property
  def detected_fraction(self) -> float:
    return self.tracker.detected_fraction

  def check(self, path: str, num_frames: int) -> None:
    if not self.tracker.found_any:
      raise NoFaceError(
          path,
          f"no face found in any of {num_frames} frames (detector "
          f"{self.cfg.detector!r}); pass roi='full_frame' to use whole frames "
          "explicitly",
      )


class _FullFrameROI:
  """The whole frame (resized to a square without cropping)."""

  def __init__(self, cfg: PreprocessConfig):
    self.cfg = cfg

  def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    mask = skin_mask(frame) if self.cfg.skin_mask else None
    rgb, ok = skin_mean_rgb(frame, mask, min_fraction=self.cfg.min_skin_fraction)
    return frame, rgb, ok

  detected_fraction = None  # no detector runs

  def check(self, path: str, num_frames: int) -> None:
    del path, num_frames


RGB_ROIS = ("box", "landmarks")
_ROIS = {"face": _FaceROI, "landmark_patches": _FaceROI, "full_frame": _FullFrameROI}


def preprocess_video(source: FrameSource, cfg: PreprocessConfig | None = None) -> PreprocessedVideo:
  """Runs the streaming preprocessing pass over one video.

  Raises:
    NoFaceError: ``roi='face'`` and the detector never found a face.
    VideoError: the source cannot be decoded or its timestamps go backwards.
  """
  cfg = cfg or PreprocessConfig()
  roi = _ROIS[cfg.roi](cfg)
  size = (cfg.size, cfg.size)
  period = 1.0 / cfg.target_fps
  tol = _TIME_TOLERANCE_FRAMES * period
  blank = np.zeros((cfg.size, cfg.size, 3), np.uint8)

  out_frames: list[np.ndarray] = []
  out_has_box: list[bool] = []
  src_t: list[float] = []
  src_rgb: list[np.ndarray] = []
  src_ok: list[bool] = []
  t0 = None
  prev_crop = None  # full-resolution crop of the previous source frame (or None)
  prev_small = None  # its resized version, computed only if it gets emitted

  def emit_until(t_limit: float) -> None:
    """Emits the previous source frame for every output time before ``t_limit``."""
    nonlocal prev_small
    while t0 + len(out_frames) * period < t_limit:
      if prev_small is None:
        prev_small = (
            blank
            if prev_crop is None
            else cv2.resize(prev_crop, size, interpolation=cv2.INTER_AREA)
        )
      out_frames.append(prev_small)
      out_has_box.append(prev_crop is not None)

  for t, frame in source:
    if src_t and t <= src_t[-1]:
      raise VideoError(
          source.path,
          f"frame timestamps go backwards at frame {len(src_t)} "
          f"({t:.6f} s after {src_t[-1]:.6f} s)",
      )
    if t0 is None:
      t0 = t
    else:
      emit_until(t - tol)
    crop, rgb, ok = roi(frame)
    src_t.append(t)
    src_rgb.append(rgb)
    src_ok.append(ok)
    prev_crop, prev_small = crop, None

  if t0 is None:
    raise VideoError(source.path, "no frames decoded")
  roi.check(source.path, len(src_t))
  emit_until(src_t[-1] + tol + 1e-12)

  timestamps = t0 + np.arange(len(out_frames), dtype=np.float64) * period
  rgb_src = np.stack(src_rgb).astype(np.float32)
  rgb_src[~np.asarray(src_ok)] = np.nan
  rgb = signal.resample_by_timestamps(np.asarray(src_t), rgb_src, timestamps).astype(np.float32)
  valid = np.isfinite(rgb).all(axis=1) & np.asarray(out_has_box)
  rgb[~valid] = np.nan
  return PreprocessedVideo(
      frames=np.stack(out_frames),
      rgb=rgb,
      valid=valid,
      timestamps=timestamps,
      fps=float(cfg.target_fps),
      source_fps=float(source.fps),
      source_path=str(source.path),
      num_source_frames=len(src_t),
      source_timestamps=np.asarray(src_t, np.float64),
      detected_fraction=roi.detected_fraction,
  )


def align_labels(
    label_times: np.ndarray,
    label_values: np.ndarray,
    frame_timestamps: np.ndarray,
    *,
    tolerance_s: float | None = None,
) -> np.ndarray:
  """Resamples a label signal (e.g. PPG) onto frame times by linear interpolation.

  The labels must cover the frames' time span up to ``tolerance_s`` at either
  end (default: one frame period); inside that tolerance the edge label value
  is held rather than extrapolated.

  Returns:
    float32 array with one value (or row) per frame timestamp.

  Raises:
    ValueError: labels do not cover the frames, or inputs are malformed.
  """
  lt = np.asarray(label_times, np.float64).reshape(-1)
  ft = np.asarray(frame_timestamps, np.float64).reshape(-1)
  lv = np.asarray(label_values)
  if lv.shape[:1] != lt.shape:
    raise ValueError(f"{lt.shape[0]} label times but label values of shape {lv.shape}")
  if len(lt) < 2 or len(ft) == 0:
    raise ValueError(f"need >= 2 label samples and >= 1 frame, got {len(lt)} and {len(ft)}")
  if tolerance_s is None:
    tolerance_s = float(np.median(np.diff(ft))) if len(ft) > 1 else 0.0
  if lt[0] > ft[0] + tolerance_s:
    raise ValueError(
        f"labels start at {lt[0]:.4f} s, after the first frame at {ft[0]:.4f} s "
        f"(by {lt[0] - ft[0]:.4f} s > tolerance {tolerance_s:.4f} s)"
    )
  if lt[-1] < ft[-1] - tolerance_s:
    raise ValueError(
        f"labels end at {lt[-1]:.4f} s, before the last frame at {ft[-1]:.4f} s "
        f"(by {ft[-1] - lt[-1]:.4f} s > tolerance {tolerance_s:.4f} s)"
    )
  return signal.resample_by_timestamps(lt, lv, ft).astype(np.float32)
