"""Input representations by name: what the model sees and what it is asked to output.

A representation fixes three things that must agree (config `input_norm`):

* `normalize_frames`: uint8 clips [B, T, H, W, 3] -> float32 model input;
* `label_target`: the normalised PPG clip [B, T] -> the training target;
* `to_waveform`: the model output [B, T] -> a pulse waveform (what evaluation,
  overlap-add and export consume), so evaluation never depends on the choice.

| name | frames | target / output |
|---|---|---|
| `standardized` | z-score over the clip | PPG |
| `temporal` | each pixel's clip mean removed, unit variance per clip | PPG |
| `relative` | each pixel's change relative to its clip mean, (c - m) / (m + 0.05), unit variance per clip | PPG |
| `relative_band` | `relative`, each pixel band-limited to 0.6-4 Hz over the clip (FFT mask, frames at 30 fps) | PPG |
| `diff_normalized` | (c[t+1] - c[t]) / (c[t+1] + c[t]), unit variance per clip, last frame 0 (rPPG-Toolbox `DiffNormalized`) | first difference of the PPG, unit variance; the output is integrated (cumsum) back to a pulse |

All are pure jnp and run on device inside the jitted step.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def _unit_variance(x: Array) -> Array:
  return x / (jnp.std(x, axis=(1, 2, 3, 4), keepdims=True) + 1e-6)


def _standardized(x: Array) -> Array:
  mean = jnp.mean(x, axis=(1, 2, 3, 4), keepdims=True)
  std = jnp.std(x, axis=(1, 2, 3, 4), keepdims=True)
  return (x - mean) / (std + 1e-6)


def _temporal(x: Array) -> Array:
  # Remove each pixel's mean over the clip: the static face and background go,
  # the (sub-percent) pulse and motion stay, rescaled to unit variance per clip.
  return _unit_variance(x - jnp.mean(x, axis=1, keepdims=True))


# Grey level (of 1.0) below which a pixel's clip mean no longer scales its change.
_RELATIVE_FLOOR = 0.05
# Prepared videos are resampled to this frame rate (`preprocess.target_fps` of
# every config); the band of `relative_band` is in Hz at this rate.
BAND_FPS = 30.0
# Pulse band of `relative_band`, Hz: 36 to 240 bpm, a little wider than the
# 45-150 bpm evaluation band, so the pulse and its second harmonic at rest stay.
BAND_HZ = (0.6, 4.0)


def _relative_change(x: Array) -> Array:
  # Each pixel's change relative to its own clip mean, (c - m) / m: the skin
  # reflection model behind CHROM and POS. The pulse is a multiplicative change
  # with the blood signature in every skin pixel whatever the skin tone, and a
  # change of light intensity becomes the same (1, 1, 1) direction everywhere,
  # so one colour projection separates the two for every subject. The floor on
  # m keeps near-black pixels (hair, dark background) from amplifying noise; it
  # is a floor (max), not an offset, so every pixel above it gets the exact
  # ratio and a light change stays exactly (1, 1, 1) (an offset m + 0.05 gave
  # the channels of one skin pixel 2-7% different gains).
  mean = jnp.mean(x, axis=1, keepdims=True)
  return (x - mean) / jnp.maximum(mean, _RELATIVE_FLOOR)


def _bandpass_time(x: Array) -> Array:
  """Zero every temporal frequency outside BAND_HZ (axis 1, frames at BAND_FPS).

  A mask on the DFT of the clip extended by its mirror image (a DCT-II mask): the
  extension has no jump where the clip's end meets its start, so a slow drift is
  not turned into a sawtooth whose harmonics fall in the band, and its bins are
  half as wide (0.23 Hz for 64 frames at 30 fps). Measured against the plain DFT
  mask: a 3% light drift at 0.15 Hz with a 0.5% pulse keeps pulse correlation
  0.91-0.92 over drift phases (DFT mask: 0.31-0.55), and a
  45-50 bpm pulse keeps 0.87 of its fundamental-to-second-harmonic power ratio
  (DFT mask: 0.80-0.83, from the 0.47 Hz bin it dropped)."""
  t_len = x.shape[1]
  mirrored = jnp.concatenate([x, jnp.flip(x, axis=1)], axis=1)
  f = jnp.fft.rfftfreq(2 * t_len, 1.0 / BAND_FPS)
  mask = ((f >= BAND_HZ[0]) & (f <= BAND_HZ[1])).astype(x.dtype)
  spec = jnp.fft.rfft(mirrored, axis=1) * mask.reshape((1, -1) + (1,) * (x.ndim - 2))
  return jnp.fft.irfft(spec, n=2 * t_len, axis=1)[:, :t_len]


def _relative(x: Array) -> Array:
  return _unit_variance(_relative_change(x))


def _relative_band(x: Array) -> Array:
  # `relative`, then each pixel band-limited to the pulse band over the clip:
  # slow light drift, slow head motion and frame-rate flicker are gone before
  # the network sees the clip, as in the band-pass step of CHROM and POS.
  return _unit_variance(_bandpass_time(_relative_change(x)))


def _diff_normalized(x: Array) -> Array:
  # Normalised frame difference: a relative colour change per pixel, which is
  # what the pulse is (and what cancels the static skin tone and illumination).
  d = (x[:, 1:] - x[:, :-1]) / (x[:, 1:] + x[:, :-1] + 1e-7)
  return jnp.concatenate([_unit_variance(d), jnp.zeros_like(x[:, :1])], axis=1)


def _diff_label(ppg: Array) -> Array:
  d = ppg[:, 1:] - ppg[:, :-1]
  d = d / (jnp.std(d, axis=1, keepdims=True) + 1e-6)
  return jnp.concatenate([d, jnp.zeros_like(ppg[:, :1])], axis=1)


def _integrate(rppg: Array) -> Array:
  w = jnp.cumsum(rppg, axis=-1)
  return w - jnp.mean(w, axis=-1, keepdims=True)


_FRAMES: dict[str, Callable[[Array], Array]] = {
    "standardized": _standardized,
    "temporal": _temporal,
    "relative": _relative,
    "relative_band": _relative_band,
    "diff_normalized": _diff_normalized,
}
_IDENTITY = lambda y: y  # noqa: E731
# Every representation's target is the PPG itself except diff_normalized's.
_LABELS = {**{name: _IDENTITY for name in _FRAMES}, "diff_normalized": _diff_label}
_OUTPUTS = {**{name: _IDENTITY for name in _FRAMES}, "diff_normalized": _integrate}
NAMES = tuple(_FRAMES)


def check(mode: str) -> str:
  """`mode` if it is a known representation, else a ValueError listing the known ones."""
  if mode not in _FRAMES:
    raise ValueError(f"unknown input_norm {mode!r}; known: {sorted(_FRAMES)}")
  return mode


def check_fps(mode: str, fps: float) -> None:
  """A ValueError if `mode` is defined in Hz and the frames are not at BAND_FPS."""
  if check(mode) == "relative_band" and abs(float(fps) - BAND_FPS) > 1e-6:
    raise ValueError(
        f"input_norm {mode!r} band-limits clips at {BAND_FPS:g} fps; "
        f"preprocess.target_fps is {float(fps):g}"
    )


def normalize_frames(frames: Array, mode: str = "standardized") -> Array:
  """uint8 clips [B, T, H, W, 3] -> float32 model input [B, T, H, W, 3]."""
  return _FRAMES[check(mode)](jnp.asarray(frames).astype(jnp.float32) / 255.0)


def label_target(ppg: Array, mode: str = "standardized") -> Array:
  """Normalised PPG clips [B, T] -> the training target of this representation."""
  return _LABELS[check(mode)](ppg)


def to_waveform(rppg: Array, mode: str = "standardized") -> Array:
  """Model output [B, T] -> pulse waveform [B, T] (integrated for diff targets)."""
  return _OUTPUTS[check(mode)](rppg)
