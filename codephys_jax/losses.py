"""Losses for both stages (pure jnp, jit-safe, batch-mean scalars).

Waveforms are [B, T]; features follow the model shapes documented in codephys_jax.models.
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def neg_pearson(pred: Array, target: Array, *, eps: float = 1e-8) -> Array:
  """Mean over the batch of 1 - Pearson r along time: 0 when identical, 2 when negated."""
  p = pred - jnp.mean(pred, axis=-1, keepdims=True)
  t = target - jnp.mean(target, axis=-1, keepdims=True)
  r = jnp.sum(p * t, -1) / jnp.sqrt(jnp.sum(p * p, -1) * jnp.sum(t * t, -1) + eps)
  return jnp.mean(1.0 - r)


def mse(x: Array, y: Array) -> Array:
  """Mean squared error over all elements."""
  return jnp.mean(jnp.square(x - y))


def _smooth_l1_elementwise(d: Array, beta: float) -> Array:
  ad = jnp.abs(d)
  return jnp.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)


def smooth_l1(x: Array, y: Array, beta: float = 1.0) -> Array:
  """Mean SmoothL1 (Huber / beta): 0.5 d^2 / beta for |d| < beta, else |d| - beta / 2."""
  return jnp.mean(_smooth_l1_elementwise(x - y, beta))


def soft_distillation(
    student: Array,
    teacher: Array,
    attention: Array,
    *,
    beta: float = 1.0,
    detach_attention: bool = False,
) -> Array:
  """Attention-weighted feature distillation.

  student [B, T, H, W, C], teacher [B, T, C] broadcast over the grid, attention [B, H, W].
  Per cell: SmoothL1 averaged over (T, C); weighted by (w + 0.5); mean over cells and batch.
  ``detach_attention`` stops this loss from pushing the attention map itself.
  """
  if student.ndim != 5 or teacher.ndim != 3 or attention.ndim != 3:
    raise ValueError(
        f"soft_distillation: want student [B,T,H,W,C], teacher [B,T,C], attention [B,H,W]; got "
        f"{student.shape}, {teacher.shape}, {attention.shape}"
    )
  per_cell = jnp.mean(
      _smooth_l1_elementwise(student - teacher[:, :, None, None, :], beta), axis=(1, 4)
  )
  w = jax.lax.stop_gradient(attention) if detach_attention else attention
  return jnp.mean((w + 0.5) * per_cell)


def feature_loss(queries: Array, target_quantized: Array) -> Array:
  """MSE between query tokens and the (stop-gradiented) ground-truth quantised tokens."""
  return mse(queries, jax.lax.stop_gradient(target_quantized))


def code_cross_entropy(logits: Array, indices: Array) -> Array:
  """Mean cross-entropy of code logits [..., K] against integer code indices [...]."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, indices[..., None].astype(jnp.int32), axis=-1))


def _bpm_grid(bpm_min: int, bpm_max: int) -> np.ndarray:
  if bpm_max <= bpm_min:
    raise ValueError(f"bpm grid: bpm_max={bpm_max} must exceed bpm_min={bpm_min}")
  return np.arange(bpm_min, bpm_max + 1, dtype=np.float64)


def power_spectrum_bpm(signal: Array, fs: float, *, bpm_min: int = 40, bpm_max: int = 179) -> Array:
  """Hann-windowed DFT power of [B, T] signals on the 1-bpm grid bpm_min..bpm_max -> [B, F].

  Computed as a matrix product with precomputed cos / sin bases (cheap on accelerators).
  The signal is demeaned so the DC term cannot leak into the low-bpm bins.
  """
  t_len = signal.shape[-1]
  bpm = _bpm_grid(bpm_min, bpm_max)
  n = np.arange(t_len, dtype=np.float64)
  window = np.hanning(t_len) if t_len > 1 else np.ones(1)
  phase = 2.0 * np.pi * n[:, None] * (bpm[None, :] / 60.0) / float(fs)
  cos_b = jnp.asarray(window[:, None] * np.cos(phase), signal.dtype)
  sin_b = jnp.asarray(window[:, None] * np.sin(phase), signal.dtype)
  x = signal - jnp.mean(signal, axis=-1, keepdims=True)
  return jnp.square(x @ cos_b) + jnp.square(x @ sin_b)


def hr_from_ppg_jax(ppg: Array, fs: float, *, bpm_min: int = 40, bpm_max: int = 179) -> Array:
  """Heart rate in bpm [B]: argmax of the 1-bpm power spectrum of ppg [B, T]."""
  spec = power_spectrum_bpm(ppg, fs, bpm_min=bpm_min, bpm_max=bpm_max)
  return bpm_min + jnp.argmax(spec, axis=-1).astype(jnp.float32)


def resolvable_label(
    hr_bpm: Array, t_len: int, fs: float, *, bpm_min: int = 40, bpm_max: int = 179
) -> Array:
  """Label distribution [B, F]: the normalised 1-bpm power spectrum of an ideal
  pulse at hr_bpm seen through the same Hann window of t_len samples.

  Its width is what a clip of this length can resolve (the window's main lobe,
  about 2 * 60 * fs / t_len bpm wide: ~56 bpm for 64 frames at 30 fps, ~22 bpm
  for 160), so a perfect prediction reaches KL = 0. Cosine and sine phases are
  averaged, which removes the phase dependence of the lobe at low rates.
  """
  hr = jnp.asarray(hr_bpm, jnp.float32).reshape(-1)
  t = jnp.arange(t_len, dtype=jnp.float32) / float(fs)
  phase = 2.0 * jnp.pi * (hr[:, None] / 60.0) * t[None, :]
  spec = 0.5 * (
      power_spectrum_bpm(jnp.cos(phase), fs, bpm_min=bpm_min, bpm_max=bpm_max)
      + power_spectrum_bpm(jnp.sin(phase), fs, bpm_min=bpm_min, bpm_max=bpm_max)
  )
  return spec / (jnp.sum(spec, axis=-1, keepdims=True) + 1e-12)


def spectral_log_probs(
    pred: Array, fs: float, *, bpm_min: int = 40, bpm_max: int = 179, floor: float = 1e-6
) -> Array:
  """log of pred's power spectrum normalised to sum 1 on the bpm grid, [B, F].

  These are proper logits: softmax(log p) = p, so the cross-entropy is
  -log(fraction of in-grid power at the label), which an output concentrating
  its power at the heart rate drives down. (Using the normalised power p
  itself as logits, as before, made every logit <= 1 and the softmax nearly
  uniform: the loss sat at log(F) and taught nothing.) `floor` keeps the log
  and its gradient finite for bins without power and for a constant output.
  """
  spec = power_spectrum_bpm(pred, fs, bpm_min=bpm_min, bpm_max=bpm_max)
  p = spec / (jnp.sum(spec, axis=-1, keepdims=True) + 1e-12)
  return jax.nn.log_softmax(jnp.log(p + floor), axis=-1)


def frequency_ce_loss(
    pred: Array,
    hr_bpm: Array,
    fs: float,
    *,
    bpm_min: int = 40,
    bpm_max: int = 179,
) -> Tuple[Array, Array]:
  """Frequency losses (PhysFormer family), both batch means: (cross-entropy, KL).

  Logits are `spectral_log_probs` (log of the normalised power). CE is against
  the 1-bpm bin nearest to hr_bpm (clipped to the grid); KL(label || p) uses
  `resolvable_label`, whose width is the resolution of the clip, so both have
  a minimum a real prediction can approach.
  """
  logp = spectral_log_probs(pred, fs, bpm_min=bpm_min, bpm_max=bpm_max)
  num_bins = logp.shape[-1]
  hr = jnp.clip(jnp.asarray(hr_bpm, jnp.float32).reshape(-1), bpm_min, bpm_max)
  target = jnp.clip(jnp.round(hr) - bpm_min, 0, num_bins - 1).astype(jnp.int32)
  ce = -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))
  label = jax.lax.stop_gradient(
      resolvable_label(hr, pred.shape[-1], fs, bpm_min=bpm_min, bpm_max=bpm_max)
  )
  kl = jnp.sum(label * (jnp.log(jnp.where(label > 0, label, 1.0)) - logp), axis=-1)
  return ce, jnp.mean(kl)


def code_usage_entropy(logits: Array) -> Array:
  """Entropy (nats) of the batch-mean code distribution softmax(logits) [..., K].

  Maximising it spreads the queries over the codebook (a usage term against
  collapse onto one or two codes); log K when every code is equally used.
  """
  p = jnp.mean(jax.nn.softmax(logits, axis=-1).reshape(-1, logits.shape[-1]), axis=0)
  return -jnp.sum(p * jnp.log(p + 1e-12))
