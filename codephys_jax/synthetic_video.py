"""Synthetic facial videos with a known pulse, drawn so face detectors find the face.

The default pipeline sends these videos through the same face detection,
tracking and skin masking as real data, so the face has the structure the
frontal-face cascade keys on: darker eye sockets and brows above brighter
cheeks, a bright nose bridge between the eyes, a mouth, hair framing a
shaded skin ellipse, and a neck. Each subject draws its skin tone, face size
and position, hair, background texture, lighting and head motion from a seed.

The pulse darkens skin pixels (more blood absorbs more light) as the PPG,
which follows blood volume, rises; the change is multiplicative, with the RGB signature of
blood volume changes (green strongest, then blue, then red: relative
amplitudes about 0.33 : 0.77 : 0.53), more strongly on the cheeks and
forehead than on the rest of the face and the neck. Sensor noise is added per
frame before quantisation to uint8.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from scipy import signal as scipy_signal

from codephys_jax import synthetic_ppg
from codephys_jax.video import FrameIterSource

# Relative pulsatile amplitudes of R, G, B for skin (normalised to green = 1).
PULSE_RGB_SIGNATURE = np.array([0.33, 0.77, 0.53], np.float32) / 0.77

# Light and dark ends of the skin tone range (RGB), interpolated per subject.
_SKIN_LIGHT = np.array([236, 196, 170], np.float32)
_SKIN_DARK = np.array([112, 74, 52], np.float32)


@dataclasses.dataclass(frozen=True)
class _Face:
  """Static per-subject layers, in the un-moved head pose."""

  fg: np.ndarray  # float32 [H, W, 4]: face/hair/neck RGB and alpha
  pulse: np.ndarray  # float32 [H, W, 3]: RGB change per unit pulse (already x fg)
  background: np.ndarray  # float32 [H, W, 3]
  centre: tuple[float, float]
  axes: tuple[float, float] = (1.0, 1.0)  # face ellipse half width, half height


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
  """Zero-mean, unit-range low-frequency noise field (bilinear upsampled grid)."""
  grid = rng.uniform(-1, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
  return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _ellipse_mask(h: int, w: int, centre, axes, angle: float = 0.0) -> np.ndarray:
  m = np.zeros((h, w), np.float32)
  cv2.ellipse(
      m,
      (int(round(centre[0])), int(round(centre[1]))),
      (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))),
      angle,
      0,
      360,
      1.0,
      -1,
      cv2.LINE_AA,
  )
  return m


def _blend(img: np.ndarray, mask: np.ndarray, colour) -> None:
  """In-place alpha blend of a flat colour through a [0, 1] mask."""
  m = mask[..., None]
  img *= 1.0 - m
  img += m * np.asarray(colour, np.float32)


def _build_face(rng: np.random.Generator, width: int, height: int) -> _Face:
  h, w = height, width
  # Background: muted base colour, blotchy low-frequency texture, a few soft shapes.
  base = rng.uniform(40, 200, 3).astype(np.float32)
  bg = np.empty((h, w, 3), np.float32)
  bg[:] = base
  for c in range(3):
    bg[..., c] += 30 * _smooth_noise(rng, h, w, max(8, w // 8)) + 8 * _smooth_noise(rng, h, w, 6)
  for _ in range(rng.integers(2, 6)):
    m = np.zeros((h, w), np.float32)
    x0, y0 = rng.integers(0, w), rng.integers(0, h)
    cv2.rectangle(
        m,
        (int(x0), int(y0)),
        (int(x0 + rng.integers(w // 10, w // 3)), int(y0 + rng.integers(h // 10, h // 3))),
        1.0,
        -1,
    )
    _blend(bg, cv2.GaussianBlur(m, (0, 0), 2.0) * 0.6, rng.uniform(30, 220, 3))
  bg = np.clip(bg, 0, 255)

  # Face geometry: ellipse (a, b) = half width, half height of the face.
  fh = rng.uniform(0.48, 0.6) * h
  a, b = 0.39 * fh, 0.5 * fh
  cx = w / 2 + rng.uniform(-0.08, 0.08) * w
  cy = h / 2 + rng.uniform(-0.04, 0.02) * h
  tone = rng.uniform(0.0, 1.0)
  skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
  skin = skin * rng.uniform(0.95, 1.05, 3).astype(np.float32)
  hair_col = rng.choice(
      np.array([[25, 18, 12], [60, 40, 25], [110, 80, 45], [40, 35, 35]], np.float32)
  )

  rgb = np.zeros((h, w, 3), np.float32)
  alpha = np.zeros((h, w), np.float32)

  # Hair behind the head and neck/shoulders below it.
  hair = _ellipse_mask(h, w, (cx, cy - 0.12 * b), (1.12 * a, 0.98 * b))
  _blend(rgb, hair, hair_col)
  alpha = np.maximum(alpha, hair)
  neck = np.zeros((h, w), np.float32)
  cv2.rectangle(neck, (int(cx - 0.55 * a), int(cy + 0.5 * b)), (int(cx + 0.55 * a), h), 1.0, -1)
  cv2.ellipse(
      neck, (int(cx), int(cy + 1.75 * b)), (int(2.4 * a), int(0.8 * b)), 0, 180, 360, 1.0, -1
  )
  neck = cv2.GaussianBlur(neck, (0, 0), 1.0)
  neck_col = skin * 0.78
  _blend(rgb, neck, neck_col)
  alpha = np.maximum(alpha, neck)

  face = _ellipse_mask(h, w, (cx, cy), (a, b))
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  u, v = (xx - cx) / a, (yy - cy) / b
  r2 = u * u + v * v
  # Rounded-surface shading plus a random side light direction.
  light_dir = rng.uniform(-0.25, 0.25)
  shade = np.clip(1.08 - 0.35 * r2 + light_dir * u, 0.55, 1.15)
  face_rgb = skin[None, None, :] * shade[..., None]
  _blend(rgb, face, np.zeros(3))
  rgb += face[..., None] * face_rgb
  alpha = np.maximum(alpha, face)

  # Pulse amplitude map: cheeks and forehead strongest; features carry none.
  amp = 0.55 * face
  for px, py, sx, sy, g in [
      (-0.45, 0.2, 0.28, 0.22, 0.9),
      (0.45, 0.2, 0.28, 0.22, 0.9),
      (0.0, -0.55, 0.5, 0.2, 0.7),
  ]:
    amp += g * face * np.exp(-(((u - px) / sx) ** 2 + ((v - py) / sy) ** 2))
  amp += 0.35 * neck * (1 - face)
  features = np.zeros((h, w), np.float32)

  # Hair fringe over the forehead top.
  fringe = _ellipse_mask(
      h,
      w,
      (cx + rng.uniform(-0.1, 0.1) * a, cy - 0.95 * b),
      (1.02 * a, rng.uniform(0.22, 0.32) * b),
  )
  fringe *= face
  _blend(rgb, fringe, hair_col)
  features = np.maximum(features, fringe)

  eye_y = cy - 0.12 * b
  eye_dx = 0.42 * a
  # Eye sockets: broad soft shadow, the main cue of the frontal cascade.
  for sgn in (-1, 1):
    ex = cx + sgn * eye_dx
    socket = cv2.GaussianBlur(
        _ellipse_mask(h, w, (ex, eye_y - 0.02 * b), (0.3 * a, 0.13 * b)), (0, 0), 0.06 * a
    )
    rgb *= (1 - 0.4 * socket)[..., None]
    brow = np.zeros((h, w), np.float32)
    cv2.ellipse(
        brow,
        (int(ex), int(eye_y - 0.12 * b)),
        (int(0.27 * a), int(0.08 * b)),
        0,
        200,
        340,
        1.0,
        max(2, int(0.06 * b)),
        cv2.LINE_AA,
    )
    _blend(rgb, brow, hair_col * 0.8)
    white = _ellipse_mask(h, w, (ex, eye_y), (0.2 * a, 0.065 * b))
    _blend(rgb, white, (215, 210, 205))
    iris = _ellipse_mask(h, w, (ex + rng.uniform(-0.03, 0.03) * a, eye_y), (0.08 * a, 0.065 * b))
    _blend(rgb, iris * white, rng.choice([[45, 30, 20], [60, 80, 100], [70, 55, 30]]))
    pupil = _ellipse_mask(h, w, (ex, eye_y), (0.035 * a, 0.035 * a))
    _blend(rgb, pupil, (10, 10, 10))
    features = np.maximum(features, np.maximum(brow, white))

  # Nose: bright bridge, darker sides and nostril shadow.
  bridge = cv2.GaussianBlur(
      _ellipse_mask(h, w, (cx, cy + 0.1 * b), (0.09 * a, 0.28 * b)), (0, 0), 0.05 * a
  )
  rgb *= (1 + 0.12 * bridge)[..., None]
  for sgn in (-1, 1):
    side = cv2.GaussianBlur(
        _ellipse_mask(h, w, (cx + sgn * 0.16 * a, cy + 0.18 * b), (0.05 * a, 0.18 * b)),
        (0, 0),
        0.05 * a,
    )
    rgb *= (1 - 0.18 * side)[..., None]
    nostril = _ellipse_mask(h, w, (cx + sgn * 0.1 * a, cy + 0.37 * b), (0.06 * a, 0.03 * b))
    rgb *= (1 - 0.55 * nostril)[..., None]
    features = np.maximum(features, nostril)

  # Mouth: dark lip line inside a reddish lip ellipse.
  mouth_y = cy + 0.58 * b
  lips = _ellipse_mask(h, w, (cx, mouth_y), (0.36 * a, 0.085 * b))
  _blend(rgb, lips, skin * np.array([0.75, 0.45, 0.45], np.float32))
  line = np.zeros((h, w), np.float32)
  cv2.line(
      line,
      (int(cx - 0.34 * a), int(mouth_y)),
      (int(cx + 0.34 * a), int(mouth_y)),
      1.0,
      max(1, int(0.025 * b)),
      cv2.LINE_AA,
  )
  _blend(rgb, line, (50, 20, 20))
  features = np.maximum(features, lips)

  # Fine skin texture so skin is not a flat colour.
  rgb *= (1 + 0.03 * _smooth_noise(rng, h, w, 3) * face)[..., None]
  amp *= 1 - features
  pulse = rgb * amp[..., None] * PULSE_RGB_SIGNATURE[None, None, :]
  fg = np.concatenate([np.clip(rgb, 0, 255), alpha[..., None]], axis=-1)
  return _Face(
      fg=fg.astype(np.float32),
      pulse=pulse.astype(np.float32),
      background=bg.astype(np.float32),
      centre=(cx, cy),
      axes=(a, b),
  )


def render_video(
    ppg: np.ndarray,
    fps: float,
    *,
    rng: np.random.Generator,
    width: int = 320,
    height: int = 240,
    pulse_amplitude: float | None = None,
    motion: float = 1.0,
    lighting: float = 1.0,
    noise_std: float | None = None,
    active_motion: float = 0.0,
) -> Iterator[np.ndarray]:
  """Streams uint8 RGB frames ``[height, width, 3]``, one per PPG sample.

  Args:
    ppg: pulse waveform at the video frame rate, one value per frame; only its
      shape matters (it is rescaled to a peak-to-peak of one).
    fps: frame rate, for the time scale of lighting drift and head motion.
    rng: draws the subject (appearance) and all per-frame randomness.
    pulse_amplitude: peak-to-peak relative change of green skin intensity
      (default: drawn in [0.5 %, 1 %]).
    motion: scales head translation/scale motion (0 = still head).
    lighting: scales slow illumination variation (0 = constant light).
    noise_std: Gaussian sensor noise in grey levels (default: drawn in [1, 2.5]).
    active_motion: scales head movement inside the heart-rate band (0 = none, the
      default, which draws nothing more from `rng`): nods, turns and talking at
      0.7-2.2 Hz in bursts, which move the face, turn its shading (the side facing
      the light brightens) and move a white specular highlight on the forehead.
      Real recordings have these; the slow drift above does not reach the band.
  """
  ppg = np.asarray(ppg, np.float64)
  if ppg.ndim != 1 or len(ppg) == 0:
    raise ValueError(f"ppg must be a non-empty 1-D array, got shape {ppg.shape}")
  if fps <= 0:
    raise ValueError(f"fps must be > 0, got {fps}")
  if not active_motion >= 0:  # NaN too
    raise ValueError(f"active_motion must be >= 0 (0 = none), got {active_motion}")
  face = _build_face(rng, width, height)
  if pulse_amplitude is None:
    pulse_amplitude = float(rng.uniform(0.005, 0.01))
  if noise_std is None:
    noise_std = float(rng.uniform(1.0, 2.5))
  ptp = float(np.ptp(ppg))
  p = (ppg - ppg.mean()) / ptp if ptp > 0 else np.zeros_like(ppg)
  # More blood absorbs more light: skin darkens as the PPG (blood volume) rises.
  p = (-pulse_amplitude * p).astype(np.float32)

  # Smooth head motion: a couple of slow sinusoids per axis plus scale breathing.
  n = len(ppg)
  t = np.arange(n) / fps

  def wave(amp):
    f = rng.uniform(0.05, 0.35, 2)
    ph = rng.uniform(0, 2 * np.pi, 2)
    return amp * (np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + ph[1]))

  dx = wave(motion * rng.uniform(0.0, 0.02) * width)
  dy = wave(motion * rng.uniform(0.0, 0.015) * height)
  ds = 1.0 + wave(motion * rng.uniform(0.0, 0.02))
  f_light = rng.uniform(0.03, 0.2)
  light = 1.0 + lighting * rng.uniform(0.0, 0.06) * np.sin(
      2 * np.pi * f_light * t + rng.uniform(0, 2 * np.pi)
  )
  light = light.astype(np.float32)
  turn = None
  if active_motion > 0:
    turn, (bx, by, bs) = _active_motion(rng, n, fps, active_motion)
    dx, dy, ds = dx + bx * width, dy + by * height, ds + bs
    fa, fb = face.axes
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (xx - face.centre[0]) / fa
    skin = face.fg[..., 3] * (np.abs(u) <= 1.2)
    # Diffuse: the side turned towards the light brightens, the other darkens.
    shading = (active_motion * rng.uniform(0.02, 0.05) * u * skin).astype(np.float32)
    # Specular: a soft white highlight above the brows, stronger as the head turns to it.
    hx = face.centre[0] + rng.uniform(-0.3, 0.3) * fa
    hy = face.centre[1] - rng.uniform(0.45, 0.65) * fb
    blob = np.exp(-(((xx - hx) / (0.35 * fa)) ** 2 + ((yy - hy) / (0.15 * fb)) ** 2) / 2)
    specular = (active_motion * rng.uniform(4.0, 12.0) * blob * face.fg[..., 3]).astype(np.float32)

  cx, cy = face.centre
  layer = np.empty((height, width, 4), np.float32)
  out = np.empty((height, width, 3), np.float32)
  noise = np.empty((height, width, 3), np.float32)
  for i in range(n):
    layer[:] = face.fg
    layer[..., :3] += p[i] * face.pulse
    if turn is not None:
      layer[..., :3] *= (1.0 + turn[i] * shading)[..., None]
      layer[..., :3] += (max(0.0, 0.5 + 0.5 * float(turn[i])) * specular)[..., None]
    s = float(ds[i])
    m = np.array([[s, 0.0, (1 - s) * cx + dx[i]], [0.0, s, (1 - s) * cy + dy[i]]], np.float32)
    moved = cv2.warpAffine(
        layer,
        m,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    a = moved[..., 3:4]
    np.multiply(face.background, 1.0 - a, out=out)
    out += moved[..., :3] * a
    out *= light[i]
    noise[:] = rng.standard_normal((height, width, 3), dtype=np.float32)
    out += noise_std * noise
    yield np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _active_motion(
    rng: np.random.Generator, n: int, fps: float, scale: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """(head turn in [-1, 1], (dx, dy) as fractions of the frame, scale change) over
  `n` frames of in-band head movement: 1-3 movements at 0.7-2.2 Hz, each on for
  random bursts."""
  turn = np.zeros(n)
  dx, dy, ds = np.zeros(n), np.zeros(n), np.zeros(n)
  for _ in range(int(rng.integers(1, 4))):
    f = rng.uniform(0.7, 2.2) * (1.0 + 0.05 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n))
    phase = 2 * np.pi * np.cumsum(f) / fps + rng.uniform(0, 2 * np.pi)
    # Bursts: on/off segments of 1-6 s, edges smoothed over ~0.5 s.
    on = np.zeros(n)
    i = 0
    while i < n:
      length = int(rng.uniform(1.0, 6.0) * fps)
      on[i : i + length] = float(rng.random() < 0.5)
      i += length
    k = max(1, int(0.5 * fps))
    env = np.convolve(on, np.ones(k) / k, mode="same")
    wave = env * np.sin(phase)
    turn += rng.uniform(0.3, 1.0) * wave
    dx += scale * rng.uniform(0.0, 0.012) * wave
    dy += scale * rng.uniform(0.0, 0.012) * np.roll(wave, int(rng.integers(0, 10)))
    ds += scale * rng.uniform(0.0, 0.012) * wave
  turn = np.clip(turn, -1.0, 1.0).astype(np.float32)
  return turn, (dx, dy, ds)


SKIN_LOWPASS_HZ = 3.0


def skin_blood_volume(
    ppg: np.ndarray, fps: float, *, cutoff_hz: float = SKIN_LOWPASS_HZ
) -> np.ndarray:
  """The pulse as facial skin shows it, from the (finger) reference PPG.

  Camera rPPG waveforms are smoother than contact finger PPG: the dicrotic notch
  and upper harmonics are damped in the facial microvasculature. A zero-phase
  2nd-order low-pass keeps the fundamental of every heart rate up to 180 bpm
  and damps the harmonics, so the label keeps its finger-PPG morphology while
  the rendered skin carries the smoother facial pulse.
  """
  cutoff = min(cutoff_hz, 0.45 * fps)
  sos = scipy_signal.butter(2, cutoff, btype="low", fs=fps, output="sos")
  padlen = min(len(ppg) - 1, 3 * (2 * len(sos) + 1))
  return scipy_signal.sosfiltfilt(sos, np.asarray(ppg, np.float64), padlen=padlen).astype(
      np.float32
  )


@dataclasses.dataclass(frozen=True)
class SyntheticSubject:
  """A synthetic subject: reference PPG at the frame rate and a repeatable video.

  ``frames()`` returns a fresh frame iterator each call (same frames every
  time); ``source()`` wraps it as a :class:`~codephys_jax.video.FrameSource`.
  """

  seed: int
  fps: float
  width: int
  height: int
  ppg: np.ndarray  # float32 [N], one sample per frame
  timestamps: np.ndarray  # float64 [N], seconds
  mean_hr: float  # bpm
  frames: Callable[[], Iterator[np.ndarray]]

  @property
  def num_frames(self) -> int:
    return len(self.ppg)

  def source(
      self,
      frames: Callable[[], Iterator[np.ndarray]] | None = None,
      *,
      name: str | None = None,
  ) -> FrameIterSource:
    """The video as a FrameSource; `frames`: a repeatable factory of the same
    number of frames (e.g. degraded ones) to use instead of `self.frames`."""
    return FrameIterSource(
        frames or self.frames,
        self.fps,
        size=(self.width, self.height),
        num_frames=self.num_frames,
        name=name or f"synthetic-subject-{self.seed}",
    )


def make_subject(
    seed: int,
    *,
    duration_s: float,
    fps: float = 30.0,
    width: int = 320,
    height: int = 240,
    hr_range_bpm: tuple[float, float] = (55.0, 120.0),
    **render_kwargs,
) -> SyntheticSubject:
  """Draws one synthetic subject (heart rate, PPG, appearance) from ``seed``.

  ``render_kwargs`` go to :func:`render_video` (``pulse_amplitude``, ``motion``,
  ``lighting``, ``noise_std``).
  """
  if duration_s <= 0:
    raise ValueError(f"duration_s must be > 0, got {duration_s}")
  lo, hi = hr_range_bpm
  if not 0 < lo <= hi:
    raise ValueError(f"hr_range_bpm must satisfy 0 < low <= high, got {hr_range_bpm}")
  n = int(round(duration_s * fps))
  ppg_rng, video_seed = np.random.default_rng([seed, 0]), [seed, 1]
  hr = float(ppg_rng.uniform(lo, hi))
  sample = synthetic_ppg.synth_ppg(n, fps, mean_hr_bpm=hr, rng=ppg_rng)
  ppg = np.asarray(sample.ppg, np.float32)
  skin_pulse = skin_blood_volume(ppg, fps)

  def frames() -> Iterator[np.ndarray]:
    return render_video(
        skin_pulse,
        fps,
        rng=np.random.default_rng(video_seed),
        width=width,
        height=height,
        **render_kwargs,
    )

  return SyntheticSubject(
      seed=seed,
      fps=float(fps),
      width=width,
      height=height,
      ppg=ppg,
      timestamps=np.arange(n, dtype=np.float64) / fps,
      mean_hr=float(sample.mean_hr),
      frames=frames,
  )
