"""Video degradations for robustness evaluation and training augmentation.

Frames are uint8 RGB [H, W, 3]; clips are [T, H, W, 3]. Every degradation has
a severity on a common 0..5 scale (floats interpolate the per-type tables; 0 is
exactly the identity) and is deterministic given a seed. It works in streaming:
`deg(frame, index)` needs only the frame and its index in the video, because all
randomness is derived from (seed, type, index) and every time-varying quantity
(motion-blur direction, head trajectory, flicker, brightness steps) is a closed
form function of time. Results therefore do not depend on processing order or
chunking; pass `start_index` to `apply_clip` when a clip does not start at 0.

Types (`DEGRADATIONS`):
  sensor_noise  read (Gaussian) + shot (signal-dependent, Poisson-like) noise.
  gaussian_blur Gaussian point-spread function.
  defocus       anti-aliased disk point-spread function.
  motion_blur   linear kernel; its direction and length follow a smooth random
                trajectory over time (a band-limited random walk).
  jpeg          per-frame JPEG (cv2.imencode) at a quality set by severity.
  video_codec   lossy MPEG-4 Part 2 ('mp4v', the lossy encoder available in the
                opencv wheel; its bitrate cannot be set through cv2.VideoWriter),
                so low bitrate is emulated by downscaling before encoding and
                upscaling after. Each frame is encoded as its own one-frame video
                (intra-coded) to keep streaming and chunk independence; inter-frame
                artefacts are therefore not modelled.
  illumination  multiplicative flicker at a seed-chosen frequency (0.5-4 Hz, so it
                can fall inside the heart-rate band) plus brightness steps every
                2-4 s.
  head_motion   per-frame affine warp (translation, rotation, scale about the
                centre) following a smooth random trajectory; borders reflected.

Spatial sizes (blur radii, shifts) are defined for a 128-pixel face crop and
scaled by min(H, W) / 128, so a severity means a similar visual effect on 72x72
model inputs and on larger crops.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import zlib
from typing import Callable, Sequence

import cv2
import numpy as np

MAX_SEVERITY = 5
REFERENCE_SIZE = 128.0

# Per-type parameter tables indexed by severity 0..5 (interpolated for floats).
_READ_NOISE_STD = (0.0, 1.0, 2.0, 3.5, 5.0, 7.0)  # grey levels
_SHOT_NOISE_GAIN = (0.0, 0.15, 0.3, 0.6, 1.0, 1.6)  # variance per grey level
_GAUSS_SIGMA = (0.0, 0.8, 1.2, 1.8, 2.6, 3.6)  # px at 128
_DEFOCUS_RADIUS = (0.0, 1.5, 2.2, 3.0, 4.0, 5.5)  # px at 128
_MOTION_LENGTH = (0.0, 3.0, 5.0, 8.0, 12.0, 16.0)  # px at 128
_JPEG_QUALITY = (100.0, 60.0, 40.0, 25.0, 15.0, 8.0)
_CODEC_SCALE = (1.0, 0.85, 0.7, 0.55, 0.45, 0.35)
_FLICKER_AMP = (0.0, 0.02, 0.04, 0.07, 0.1, 0.15)
_STEP_AMP = (0.0, 0.05, 0.1, 0.15, 0.22, 0.3)
_SHIFT_FRAC = (0.0, 0.01, 0.02, 0.04, 0.06, 0.09)  # of min(H, W)
_ROTATION_DEG = (0.0, 1.0, 2.0, 4.0, 7.0, 10.0)
_SCALE_DEV = (0.0, 0.01, 0.02, 0.04, 0.06, 0.09)


def _table(values: Sequence[float], severity: float) -> float:
  return float(np.interp(severity, np.arange(len(values)), values))


def _key(name: str) -> int:
  # Stable across processes (unlike hash()).
  return zlib.crc32(name.encode())


def _frame_rng(seed: int, name: str, index: int) -> np.random.Generator:
  return np.random.default_rng([int(seed) & 0xFFFFFFFF, _key(name), int(index)])


def _smooth_path(
    seed: int,
    name: str,
    component: int,
    t_s: float,
    *,
    low_hz: float = 0.05,
    high_hz: float = 0.5,
    num_waves: int = 4,
) -> float:
  """Band-limited random trajectory in [-1, 1] evaluated at time t_s.

  A sum of sinusoids with seed-drawn frequencies and phases: it wanders like a
  random walk over seconds but any time can be evaluated without history.
  """
  rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _key(name), 1_000_003 + component])
  freqs = rng.uniform(low_hz, high_hz, num_waves)
  phases = rng.uniform(0, 2 * np.pi, num_waves)
  amps = rng.uniform(0.5, 1.0, num_waves)
  return float(np.sum(amps * np.sin(2 * np.pi * freqs * t_s + phases)) / np.sum(amps))


def _size_scale(frame: np.ndarray) -> float:
  return min(frame.shape[0], frame.shape[1]) / REFERENCE_SIZE


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class _Context:
  index: int
  severity: float
  seed: int
  fps: float
  name: str

  @property
  def t_s(self) -> float:
    return self.index / self.fps


def _sensor_noise(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  rng = _frame_rng(ctx.seed, ctx.name, ctx.index)
  x = frame.astype(np.float32)
  var = _table(_READ_NOISE_STD, ctx.severity) ** 2 + _table(_SHOT_NOISE_GAIN, ctx.severity) * x
  return _to_uint8(x + np.sqrt(var) * rng.standard_normal(x.shape, dtype=np.float32))


def _filter(frame: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  return cv2.filter2D(frame, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


def _gaussian_blur(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  sigma = _table(_GAUSS_SIGMA, ctx.severity) * _size_scale(frame)
  ksize = 2 * int(np.ceil(3 * sigma)) + 1
  return cv2.GaussianBlur(
      frame, (ksize, ksize), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101
  )


def disk_kernel(radius: float, *, supersample: int = 8) -> np.ndarray:
  """Normalised disk point-spread function with anti-aliased edges (pixel coverage)."""
  half = int(np.ceil(radius))
  offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
  grid = np.arange(-half, half + 1)
  sub = (grid[:, None] + offsets[None, :]).ravel()  # sub-pixel coordinates
  inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= radius**2
  size = grid.size
  cover = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
  return cover / cover.sum()


def _defocus(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  radius = _table(_DEFOCUS_RADIUS, ctx.severity) * _size_scale(frame)
  return _filter(frame, disk_kernel(radius))


def line_kernel(length: float, angle_rad: float) -> np.ndarray:
  """Normalised linear motion kernel (bilinear splat of points along the segment)."""
  half = int(np.ceil(length / 2)) + 1
  size = 2 * half + 1
  pos = np.linspace(-length / 2, length / 2, max(2, int(np.ceil(length * 4)) + 1))
  xs = half + pos * np.cos(angle_rad)
  ys = half + pos * np.sin(angle_rad)
  x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
  fx, fy = xs - x0, ys - y0
  kernel = np.zeros((size, size))
  for dy, dx, w in (
      (0, 0, (1 - fx) * (1 - fy)),
      (0, 1, fx * (1 - fy)),
      (1, 0, (1 - fx) * fy),
      (1, 1, fx * fy),
  ):
    np.add.at(kernel, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), w)
  return kernel / kernel.sum()


def _motion_blur(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  angle = np.pi * _smooth_path(ctx.seed, ctx.name, 0, ctx.t_s, high_hz=0.3)
  # Length swings between 60% and 100% of the severity's length as the head speeds up and slows down.
  speed = 0.8 + 0.2 * _smooth_path(ctx.seed, ctx.name, 1, ctx.t_s)
  length = _table(_MOTION_LENGTH, ctx.severity) * _size_scale(frame) * speed
  return _filter(frame, line_kernel(length, angle))


def _jpeg(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  quality = int(round(_table(_JPEG_QUALITY, ctx.severity)))
  # OpenCV's encoder expects BGR; converting keeps the chroma planes right.
  ok, buf = cv2.imencode(
      ".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
  )
  if not ok:
    raise ValueError(f"JPEG encoding failed for a frame of shape {frame.shape}")
  return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _codec_roundtrip(bgr: np.ndarray) -> np.ndarray:
  fd, path = tempfile.mkstemp(suffix=".mp4")
  os.close(fd)
  try:
    h, w = bgr.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    if not writer.isOpened():
      raise ValueError(f"cv2.VideoWriter could not open an 'mp4v' writer for {path}")
    writer.write(bgr)
    writer.release()
    cap = cv2.VideoCapture(path)
    ok, out = cap.read()
    cap.release()
    if not ok:
      raise ValueError(f"could not decode the re-encoded frame from {path}")
    return out
  finally:
    os.remove(path)


def _video_codec(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  h, w = frame.shape[:2]
  scale = _table(_CODEC_SCALE, ctx.severity)
  # MPEG-4 needs even dimensions (4:2:0 chroma); keep at least one macroblock.
  sw = max(16, 2 * int(round(w * scale / 2)))
  sh = max(16, 2 * int(round(h * scale / 2)))
  small = cv2.resize(np.ascontiguousarray(frame[..., ::-1]), (sw, sh), interpolation=cv2.INTER_AREA)
  decoded = _codec_roundtrip(small)
  return np.ascontiguousarray(
      cv2.resize(decoded, (w, h), interpolation=cv2.INTER_LINEAR)[..., ::-1]
  )


def illumination_gain(index: int, severity: float, seed: int, *, fps: float = 30.0) -> float:
  """Multiplicative brightness of frame `index`: 1 + flicker + brightness step."""
  name = "illumination"
  setup = np.random.default_rng([int(seed) & 0xFFFFFFFF, _key(name), 7])
  flicker_hz = setup.uniform(0.5, 4.0)
  flicker_phase = setup.uniform(0, 2 * np.pi)
  step_period_s = setup.uniform(2.0, 4.0)
  step_offset_s = setup.uniform(0.0, step_period_s)
  t = index / fps
  segment = int(np.floor((t + step_offset_s) / step_period_s))
  level = np.random.default_rng(
      [int(seed) & 0xFFFFFFFF, _key(name), 2_000_003, segment + 1_000_000]
  ).uniform(-1, 1)
  flicker = np.sin(2 * np.pi * flicker_hz * t + flicker_phase)
  return float(1.0 + _table(_FLICKER_AMP, severity) * flicker + _table(_STEP_AMP, severity) * level)


def _illumination(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  gain = illumination_gain(ctx.index, ctx.severity, ctx.seed, fps=ctx.fps)
  return _to_uint8(frame.astype(np.float32) * gain)


def head_motion_affine(
    index: int, severity: float, seed: int, height: int, width: int, *, fps: float = 30.0
) -> np.ndarray:
  """2x3 affine (cv2.warpAffine convention) of frame `index`."""
  name = "head_motion"
  t = index / fps
  path = [_smooth_path(seed, name, k, t) for k in range(4)]
  shift = _table(_SHIFT_FRAC, severity) * min(height, width)
  angle = _table(_ROTATION_DEG, severity) * path[2]
  scale = 1.0 + _table(_SCALE_DEV, severity) * path[3]
  matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, scale)
  matrix[:, 2] += (shift * path[0], shift * path[1])
  return matrix


def _head_motion(frame: np.ndarray, ctx: _Context) -> np.ndarray:
  h, w = frame.shape[:2]
  matrix = head_motion_affine(ctx.index, ctx.severity, ctx.seed, h, w, fps=ctx.fps)
  return cv2.warpAffine(
      frame, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
  )


DegradationFn = Callable[[np.ndarray, _Context], np.ndarray]

DEGRADATIONS: dict[str, DegradationFn] = {
    "sensor_noise": _sensor_noise,
    "defocus": _defocus,
    "gaussian_blur": _gaussian_blur,
    "motion_blur": _motion_blur,
    "jpeg": _jpeg,
    "video_codec": _video_codec,
    "illumination": _illumination,
    "head_motion": _head_motion,
}


def _check_frame(frame: np.ndarray) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
    raise ValueError(
        f"expected a uint8 RGB frame [H, W, 3], got dtype {frame.dtype} and shape {frame.shape}"
    )
  return frame


def _check_clip(frames: np.ndarray) -> np.ndarray:
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
    raise ValueError(
        f"expected a uint8 RGB clip [T, H, W, 3], got dtype {frames.dtype} and shape {frames.shape}"
    )
  return frames


@dataclasses.dataclass(frozen=True)
class Degradation:
  """One degradation type at a fixed severity and seed; call it per frame."""

  name: str
  severity: float
  seed: int = 0
  fps: float = 30.0

  def __post_init__(self):
    if self.name not in DEGRADATIONS:
      raise ValueError(f"unknown degradation {self.name!r}; valid names: {sorted(DEGRADATIONS)}")
    if not 0.0 <= float(self.severity) <= MAX_SEVERITY:
      raise ValueError(f"severity must be in [0, {MAX_SEVERITY}], got {self.severity}")
    if not self.fps > 0:
      raise ValueError(f"fps must be > 0, got {self.fps}")

  def __call__(self, frame: np.ndarray, index: int) -> np.ndarray:
    frame = _check_frame(frame)
    if float(self.severity) == 0.0:
      return frame.copy()
    ctx = _Context(
        index=int(index),
        severity=float(self.severity),
        seed=int(self.seed),
        fps=float(self.fps),
        name=self.name,
    )
    return DEGRADATIONS[self.name](frame, ctx)

  def apply_clip(self, frames: np.ndarray, *, start_index: int = 0) -> np.ndarray:
    """Applies to [T, H, W, 3]; frame t gets index start_index + t."""
    frames = _check_clip(frames)
    if frames.shape[0] == 0:
      return frames.copy()
    return np.stack([self(f, start_index + t) for t, f in enumerate(frames)])


@dataclasses.dataclass(frozen=True)
class Compose:
  """Several degradations applied in order (an empty Compose is the identity)."""

  degradations: tuple[Degradation, ...] = ()

  def __call__(self, frame: np.ndarray, index: int) -> np.ndarray:
    out = _check_frame(frame).copy()
    for deg in self.degradations:
      out = deg(out, index)
    return out

  def apply_clip(self, frames: np.ndarray, *, start_index: int = 0) -> np.ndarray:
    frames = _check_clip(frames)
    if frames.shape[0] == 0:
      return frames.copy()
    return np.stack([self(f, start_index + t) for t, f in enumerate(frames)])


def make_degradation(
    name: str, severity: float, *, seed: int = 0, fps: float = 30.0
) -> Degradation:
  """Degradation `name` at `severity` (0..5, 0 = identity), deterministic given `seed`."""
  return Degradation(name=name, severity=float(severity), seed=int(seed), fps=float(fps))


def random_degradation(
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
    severity_range: tuple[float, float] = (1.0, float(MAX_SEVERITY)),
    prob: float = 0.5,
    *,
    fps: float = 30.0,
) -> Degradation | Compose:
  """Samples a degradation for training augmentation.

  With probability `prob` returns one type drawn uniformly from `names` (all
  types when None) with severity uniform in `severity_range` and a fresh seed
  from `rng`; otherwise the identity `Compose(())`. Draw one per video or clip
  so the degradation stays coherent over time.
  """
  names = sorted(DEGRADATIONS) if names is None else list(names)
  if not names:
    raise ValueError("names must not be empty")
  unknown = [n for n in names if n not in DEGRADATIONS]
  if unknown:
    raise ValueError(f"unknown degradations {unknown}; valid names: {sorted(DEGRADATIONS)}")
  lo, hi = severity_range
  if not 0.0 <= lo <= hi <= MAX_SEVERITY:
    raise ValueError(
        f"severity_range must satisfy 0 <= lo <= hi <= {MAX_SEVERITY}, got {severity_range}"
    )
  if not 0.0 <= prob <= 1.0:
    raise ValueError(f"prob must be in [0, 1], got {prob}")
  # Draw everything unconditionally so the rng advances the same way either way.
  apply = rng.random() < prob
  name = names[int(rng.integers(len(names)))]
  severity = float(rng.uniform(lo, hi))
  seed = int(rng.integers(0, 2**31 - 1))
  if not apply:
    return Compose(())
  return make_degradation(name, severity, seed=seed, fps=fps)
