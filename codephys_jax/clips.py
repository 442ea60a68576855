"""Whole-video waveforms from a clip model: overlapping clips blended by overlap-add.

Models see fixed-length clips. Normalising and concatenating non-overlapping
clip outputs leaves a jump (and a per-clip trend) at every clip border, which
puts spurious spectral lines at multiples of the clip rate (fps / clip_length *
60 bpm: every ~11 bpm for 160-frame clips) that an HR estimator then picks.
Here every clip output is linearly detrended and standardised, weighted by a
taper that vanishes towards the clip ends, summed at its position and divided
by the summed weights, so the borders blend smoothly. NumPy only: an exported
model runs through it without the model code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def clip_starts(num_frames: int, clip_length: int, hop: int) -> list[int]:
  """Clip start indices covering [0, num_frames); the last clip ends at the end."""
  if clip_length <= 0 or hop <= 0:
    raise ValueError(f"clip_length and hop must be > 0, got {clip_length}, {hop}")
  if num_frames <= clip_length:
    return [0]
  starts = list(range(0, num_frames - clip_length + 1, hop))
  if starts[-1] + clip_length < num_frames:
    starts.append(num_frames - clip_length)
  return starts


def taper(length: int) -> np.ndarray:
  """Hann window without its zero end points (every sample keeps some weight)."""
  return np.hanning(length + 2)[1:-1]


def overlap_add(clip_outputs: np.ndarray, starts: list[int], num_frames: int) -> np.ndarray:
  """Blend clip outputs [K, T] placed at `starts` into [num_frames] (detrended,
  standardised, Hann-tapered, normalised by the summed taper)."""
  clip_outputs = np.asarray(clip_outputs, np.float64)
  k, length = clip_outputs.shape
  if k != len(starts):
    raise ValueError(f"{k} clip outputs but {len(starts)} start positions")
  weights = taper(length)
  total = np.zeros(max(num_frames, length))
  norm = np.zeros_like(total)
  # A straight line over one clip (seconds) is far below the pulse band: it is a
  # clip-level bias (e.g. from integrating a biased derivative), and left in it
  # would turn into a sawtooth at the clip rate.
  ramp = np.linspace(-1.0, 1.0, length)
  design = np.stack([np.ones(length), ramp], axis=1)
  coef, *_ = np.linalg.lstsq(design, clip_outputs.T, rcond=None)
  residual = clip_outputs - (design @ coef).T
  for out, s in zip(residual, starts):
    z = out / (out.std() + 1e-8)
    total[s : s + length] += weights * z
    norm[s : s + length] += weights
  return (total / np.maximum(norm, 1e-12))[:num_frames]


def predict_video(
    frames: np.ndarray,
    clip_fn: Callable[[np.ndarray], np.ndarray],
    *,
    clip_length: int,
    hop: int | None = None,
    batch_size: int = 4,
) -> np.ndarray:
  """rPPG waveform [N] for a whole video [N, H, W, C] from a clip model.

  `clip_fn` maps a batch [B, clip_length, H, W, C] to waveforms [B, clip_length];
  it is always called with exactly `batch_size` clips (the last batch is padded)
  so that a jitted function compiles once. Videos shorter than one clip are
  padded by repeating their last frame.
  """
  n = len(frames)
  if n == 0:
    raise ValueError("cannot predict on an empty video")
  hop = hop or max(1, clip_length // 2)
  if n < clip_length:
    pad = np.repeat(frames[-1:], clip_length - n, axis=0)
    frames = np.concatenate([frames, pad], axis=0)
  starts = clip_starts(len(frames), clip_length, hop)
  outputs = []
  for lo in range(0, len(starts), batch_size):
    chunk = starts[lo : lo + batch_size]
    batch = np.stack([frames[s : s + clip_length] for s in chunk])
    if len(chunk) < batch_size:
      batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(chunk), axis=0)])
    out = np.asarray(clip_fn(batch))
    if out.shape != (batch_size, clip_length):
      raise ValueError(f"clip_fn returned shape {out.shape}, expected {(batch_size, clip_length)}")
    outputs.append(out[: len(chunk)])
  return overlap_add(np.concatenate(outputs), starts, len(frames))[:n]
