"""Training augmentation of face-crop clips (grain `random_map` functions).

The reference recipe (docs/METHOD.md, PhysFormer/CodePhys family): horizontal flip,
illumination offset N(0, 10) grey levels per clip, pixel noise N(0, 2), speed
resampling by a factor in [0.6, 1.4] and random resized crop with scale in
[0.5, 1]; plus, optionally, the camera degradations of
`codephys_jax.degradations` (one Degradation per clip, so noise patterns, blur
and motion stay coherent over time as in a real video).

Speed resampling plays the clip `speed` times faster: T output frames are taken
at source positions `offset + speed * k`, so the clip needs about speed * T
source frames (`required_source_length`; `data.ClipSource(source_length=...)`
cuts such windows). The PPG label is linearly interpolated at the same positions
and re-normalised, so the pulse in the frames and the label stay in sync and the
heart rate seen by the model is multiplied by `speed`.

HR-balanced speed (`target_hr_bpm=(low, high)`): instead of a uniform speed, each
clip draws a target heart rate in [low, high], uniformly in bpm or, with
`target_hr_scale='log'`, uniformly in log bpm (the same share per octave), and
plays at speed = target / (the source window's heart rate), clipped to `speed_range`. The
source heart rate is the peak of the label's Hann-windowed spectrum on the 1-bpm
grid of `hr.hr_hann_dft`. A uniform speed keeps the training set's own heart-rate
distribution (centred where its subjects are); a model trained on it learns a
pulse filter tuned there and, on a slow subject, can follow the second harmonic.

Order inside one clip: speed resampling, crop, flip, camera degradation, then
illumination offset and pixel noise (the last two in float, rounded once).
Every random draw comes from the generator grain passes in, so an element's
augmentation is a function of (seed, element index) only. uint8 in, uint8 out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from codephys_jax import data as data_lib
from codephys_jax import degradations as deg_lib
from codephys_jax import hr as hr_lib

AugmentFn = Callable[[dict, np.random.Generator], dict]
_FRAME_INTERP = ("linear", "nearest")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Augmentation settings; a range (x, x) or a zero std/prob disables that step.

  Attributes:
    flip_prob: probability of a horizontal flip (whole clip).
    illumination_std: std of a per-clip brightness offset, grey levels.
    noise_std: std of i.i.d. per-pixel Gaussian noise, grey levels.
    speed_range: playback speed factor drawn uniformly per clip.
    crop_scale: area fraction of a square crop drawn uniformly per clip, resized
      back to the full size (the same window for every frame).
    degradations: camera degradation names for `degradations.random_degradation`
      (empty = none).
    degradation_prob: probability that a clip gets one degradation.
    severity_range: severity drawn uniformly for that degradation.
    frame_interp: 'linear' (blend the two neighbouring frames) or 'nearest' for
      speed resampling of the frames.
    target_hr_bpm: (low, high) for HR-balanced speed (module docstring); empty =
      speed uniform in `speed_range`.
    target_hr_scale: 'linear' (target uniform in bpm) or 'log' (uniform in log bpm:
      the same share of clips per octave, so 45-60 bpm gets as many clips as
      90-120).
    illumination_change_prob: probability that a clip gets a changing light
      (`degradations` 'illumination': flicker at 0.5-4 Hz, inside the pulse band,
      and brightness steps), drawn on its own, not as one of `degradations`.
    illumination_change_severity: severity drawn uniformly for it.
  """

  flip_prob: float = 0.5
  illumination_std: float = 10.0
  noise_std: float = 2.0
  speed_range: tuple[float, float] = (0.6, 1.4)
  crop_scale: tuple[float, float] = (0.5, 1.0)
  degradations: tuple[str, ...] = ()
  degradation_prob: float = 0.0
  severity_range: tuple[float, float] = (1.0, 4.0)
  frame_interp: str = "linear"
  target_hr_bpm: tuple[float, ...] = ()
  target_hr_scale: str = "linear"
  illumination_change_prob: float = 0.0
  illumination_change_severity: tuple[float, float] = (1.0, 5.0)

  def __post_init__(self):
    ranges = ("speed_range", "crop_scale", "severity_range", "illumination_change_severity")
    for name in ranges:
      object.__setattr__(self, name, tuple(float(x) for x in getattr(self, name)))
    object.__setattr__(self, "degradations", tuple(self.degradations))
    for name in ranges:
      lo_hi = getattr(self, name)
      if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {lo_hi}")
    if self.speed_range[0] <= 0:
      raise ValueError(f"speed_range must be > 0, got {self.speed_range}")
    if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
      raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
    for name in ("flip_prob", "degradation_prob", "illumination_change_prob"):
      if not 0 <= getattr(self, name) <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
    for name in ("illumination_std", "noise_std"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
    unknown = [n for n in self.degradations if n not in deg_lib.DEGRADATIONS]
    if unknown:
      raise ValueError(
          f"unknown degradations {unknown}; valid names: {sorted(deg_lib.DEGRADATIONS)}"
      )
    for name in ("severity_range", "illumination_change_severity"):
      lo, hi = getattr(self, name)
      if not 0 <= lo <= hi <= deg_lib.MAX_SEVERITY:
        raise ValueError(
            f"{name} must be within [0, {deg_lib.MAX_SEVERITY}], got {getattr(self, name)}"
        )
    object.__setattr__(self, "target_hr_bpm", tuple(float(x) for x in self.target_hr_bpm))
    hr_range = self.target_hr_bpm
    if hr_range and (len(hr_range) != 2 or not 0 < hr_range[0] <= hr_range[1]):
      raise ValueError(
          f"target_hr_bpm must be empty or (low, high) bpm with 0 < low <= high, "
          f"got {self.target_hr_bpm}"
      )
    if self.target_hr_scale not in ("linear", "log"):
      raise ValueError(f"target_hr_scale must be 'linear' or 'log', got {self.target_hr_scale!r}")
    if self.frame_interp not in _FRAME_INTERP:
      raise ValueError(f"frame_interp must be one of {_FRAME_INTERP}, got {self.frame_interp!r}")

  @classmethod
  def from_config(cls, cfg: Mapping[str, Any]) -> "AugmentConfig":
    """From a ConfigDict / mapping with these field names (an `enabled` key is ignored)."""
    values = dict(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
    values.pop("enabled", None)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise ValueError(f"unknown augmentation settings {unknown}; known: {sorted(fields)}")
    return cls(**values)

  @classmethod
  def identity(cls) -> "AugmentConfig":
    """Every step disabled (clips are only cut to length and re-normalised)."""
    return cls(
        flip_prob=0.0,
        illumination_std=0.0,
        noise_std=0.0,
        speed_range=(1.0, 1.0),
        crop_scale=(1.0, 1.0),
    )


def required_source_length(cfg: AugmentConfig, clip_length: int) -> int:
  """Source frames a clip needs: positions up to max_speed * (T - 1) must exist."""
  if clip_length < 2:
    raise ValueError(f"clip_length must be >= 2, got {clip_length}")
  max_speed = cfg.speed_range[1]
  # The small tolerance keeps e.g. 1.4 * 159 = 222.6 from rounding up past an exact integer.
  return max(clip_length, math.ceil(max_speed * (clip_length - 1) - 1e-9) + 1)


def speed_positions(speed: float, clip_length: int, offset: float) -> np.ndarray:
  """Source positions (fractional frame indices) of the output frames."""
  return offset + speed * np.arange(clip_length, dtype=np.float64)


def resample_frames(
    frames: np.ndarray, positions: np.ndarray, *, mode: str = "linear"
) -> np.ndarray:
  """Frames at fractional positions: blend of the two neighbours, or the nearest."""
  last = frames.shape[0] - 1
  if mode == "nearest":
    return frames[np.clip(np.rint(positions).astype(np.int64), 0, last)]
  lo = np.clip(np.floor(positions).astype(np.int64), 0, last)
  hi = np.minimum(lo + 1, last)
  w = (positions - lo).astype(np.float32)[:, None, None, None]
  out = frames[lo].astype(np.float32) * (1 - w) + frames[hi].astype(np.float32) * w
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resized_crop(frames: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
  """The same square window of every frame, resized back to the frames' size."""
  h, w = frames.shape[1:3]
  window = frames[:, top : top + side, left : left + side]
  if side == h and side == w:
    return window.copy()
  return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in window])


def draw_speed(
    cfg: AugmentConfig, source_ppg: np.ndarray, fps: float, rng: np.random.Generator
) -> float:
  """The clip's speed: uniform in speed_range, or HR-balanced (target_hr_bpm, module docstring)."""
  if not cfg.target_hr_bpm:
    return float(rng.uniform(*cfg.speed_range))
  low, high = cfg.target_hr_bpm
  if cfg.target_hr_scale == "log":
    target = float(np.exp(rng.uniform(np.log(low), np.log(high))))
  else:
    target = float(rng.uniform(low, high))
  source_hr = hr_lib.hr_hann_dft(source_ppg, fps)
  return float(np.clip(target / source_hr, *cfg.speed_range))


def _speed_window(
    cfg: AugmentConfig, ppg: np.ndarray, fps: float, clip_length: int, rng: np.random.Generator
) -> np.ndarray:
  """Source positions of a clip's output samples: its speed (`draw_speed`), then a
  random offset that keeps every position inside the source window."""
  speed = draw_speed(cfg, ppg, fps, rng)
  max_offset = (ppg.shape[0] - 1) - speed * (clip_length - 1)
  offset = int(rng.integers(0, int(math.floor(max_offset + 1e-9)) + 1))
  return speed_positions(speed, clip_length, offset)


def make_ppg_speed_augment(cfg: AugmentConfig, clip_length: int) -> AugmentFn:
  """A grain random_map function for PPG-only clips (Stage I): the speed step of
  `make_augment` alone, drawn the same way (HR-balanced when `target_hr_bpm` is
  set), applied to the label; frames, if present, are dropped.

  The codebook then holds the pulse shapes of every rate the video models are
  trained at, not only the training subjects' own rates.
  """
  need = required_source_length(cfg, clip_length)

  def augment(clip: dict, rng: np.random.Generator) -> dict:
    ppg = np.asarray(clip["ppg"], np.float64)
    if ppg.ndim != 1 or ppg.shape[0] < need:
      raise ValueError(
          f"PPG clip has shape {ppg.shape}; speed range {cfg.speed_range} with clip_length "
          f"{clip_length} needs a 1-D window of >= {need} samples"
      )
    pos = _speed_window(cfg, ppg, float(clip.get("fps", 30.0)), clip_length, rng)
    out = {k: v for k, v in clip.items() if k != "frames"}
    out["ppg"] = data_lib.normalize_ppg(np.interp(pos, np.arange(ppg.shape[0]), ppg))
    return out

  return augment


def make_augment(cfg: AugmentConfig, clip_length: int) -> AugmentFn:
  """A grain random_map function: clip dict (from data.ClipSource) -> augmented clip.

  The input's `frames` (uint8 [L, S, S, 3]) and `ppg` ([L]) need
  L >= required_source_length(cfg, clip_length); the output has exactly
  `clip_length` frames and PPG samples (PPG re-normalised with
  data.normalize_ppg). Other keys pass through unchanged.
  """
  need = required_source_length(cfg, clip_length)

  def augment(clip: dict, rng: np.random.Generator) -> dict:
    frames = np.asarray(clip["frames"])
    ppg = np.asarray(clip["ppg"], np.float64)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f"frames must be uint8 [L, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] != ppg.shape[0]:
      raise ValueError(f"{frames.shape[0]} frames but {ppg.shape[0]} PPG samples")
    length = frames.shape[0]
    if length < need:
      raise ValueError(
          f"clip has {length} frames; speed range {cfg.speed_range} with clip_length "
          f"{clip_length} needs {need} (data.ClipSource(source_length="
          f"augment.required_source_length(...)))"
      )
    out = dict(clip)

    pos = _speed_window(cfg, ppg, float(clip.get("fps", 30.0)), clip_length, rng)
    frames = resample_frames(frames, pos, mode=cfg.frame_interp)
    out["ppg"] = data_lib.normalize_ppg(np.interp(pos, np.arange(length), ppg))

    h, w = frames.shape[1:3]
    scale = float(rng.uniform(*cfg.crop_scale))
    side = max(1, min(h, w, int(round(math.sqrt(scale) * min(h, w)))))
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    frames = resized_crop(frames, top, left, side)

    if rng.random() < cfg.flip_prob:
      frames = frames[:, :, ::-1]

    if cfg.degradations and cfg.degradation_prob > 0:
      degrade = deg_lib.random_degradation(
          rng,
          cfg.degradations,
          cfg.severity_range,
          cfg.degradation_prob,
          fps=float(clip.get("fps", 30.0)),
      )
      frames = degrade.apply_clip(np.ascontiguousarray(frames))

    # Drawn only when enabled, so recipes without it keep their random stream.
    if cfg.illumination_change_prob > 0 and rng.random() < cfg.illumination_change_prob:
      light = deg_lib.Degradation(
          "illumination",
          float(rng.uniform(*cfg.illumination_change_severity)),
          seed=int(rng.integers(2**31)),
          fps=float(clip.get("fps", 30.0)),
      )
      frames = light.apply_clip(np.ascontiguousarray(frames))

    offset_grey = float(rng.normal(0.0, cfg.illumination_std)) if cfg.illumination_std else 0.0
    if offset_grey or cfg.noise_std:
      x = frames.astype(np.float32) + np.float32(offset_grey)
      if cfg.noise_std:
        x += rng.normal(0.0, cfg.noise_std, x.shape).astype(np.float32)
      frames = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    out["frames"] = np.ascontiguousarray(frames)
    return out

  return augment
