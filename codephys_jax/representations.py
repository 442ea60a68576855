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
| `diff_normalized` | (c[t+1] - c[t]) / (c[t+1] + c[t]), unit variance per clip, last frame 0 (rPPG-Toolbox `DiffNormalized`) | first difference of the PPG, unit variance; the output is integrated (cumsum) back to a pulse |

All are pure jnp and run on device inside the jitted step.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def _standardized(x: Array) -> Array:
  mean = jnp.mean(x, axis=(1, 2, 3, 4), keepdims=True)
  std = jnp.std(x, axis=(1, 2, 3, 4), keepdims=True)
  return (x - mean) / (std + 1e-6)


def _temporal(x: Array) -> Array:
  # Remove each pixel's mean over the clip: the static face and background go,
  # the (sub-percent) pulse and motion stay, rescaled to unit variance per clip.
  centred = x - jnp.mean(x, axis=1, keepdims=True)
  return centred / (jnp.std(centred, axis=(1, 2, 3, 4), keepdims=True) + 1e-6)


def _diff_normalized(x: Array) -> Array:
  # Normalised frame difference: a relative colour change per pixel, which is
  # what the pulse is (and what cancels the static skin tone and illumination).
  d = (x[:, 1:] - x[:, :-1]) / (x[:, 1:] + x[:, :-1] + 1e-7)
  d = d / (jnp.std(d, axis=(1, 2, 3, 4), keepdims=True) + 1e-6)
  return jnp.concatenate([d, jnp.zeros_like(x[:, :1])], axis=1)


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
    "diff_normalized": _diff_normalized,
}
_IDENTITY = lambda y: y  # noqa: E731
_LABELS = {"standardized": _IDENTITY, "temporal": _IDENTITY, "diff_normalized": _diff_label}
_OUTPUTS = {"standardized": _IDENTITY, "temporal": _IDENTITY, "diff_normalized": _integrate}
NAMES = tuple(_FRAMES)


def check(mode: str) -> str:
  """`mode` if it is a known representation, else a ValueError listing the known ones."""
  if mode not in _FRAMES:
    raise ValueError(f"unknown input_norm {mode!r}; known: {sorted(_FRAMES)}")
  return mode


def normalize_frames(frames: Array, mode: str = "standardized") -> Array:
  """uint8 clips [B, T, H, W, 3] -> float32 model input [B, T, H, W, 3]."""
  return _FRAMES[check(mode)](jnp.asarray(frames).astype(jnp.float32) / 255.0)


def label_target(ppg: Array, mode: str = "standardized") -> Array:
  """Normalised PPG clips [B, T] -> the training target of this representation."""
  return _LABELS[check(mode)](ppg)


def to_waveform(rppg: Array, mode: str = "standardized") -> Array:
  """Model output [B, T] -> pulse waveform [B, T] (integrated for diff targets)."""
  return _OUTPUTS[check(mode)](rppg)
