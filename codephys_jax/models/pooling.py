"""Adaptive average pooling over the spatial axes of [B, T, H, W, C] video features."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def adaptive_avg_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] averaging matrix with PyTorch AdaptiveAvgPool bin edges (floor / ceil)."""
  mat = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -(-((i + 1) * in_size) // out_size)
    mat[i, start:end] = 1.0 / (end - start)
  return mat


def adaptive_avg_pool_2d(x: Array, out_size: int) -> Array:
  """Adaptive average pooling of [B, T, H, W, C] over (H, W) to (out_size, out_size)."""
  ph = jnp.asarray(adaptive_avg_pool_matrix(x.shape[2], out_size), x.dtype)
  pw = jnp.asarray(adaptive_avg_pool_matrix(x.shape[3], out_size), x.dtype)
  return jnp.einsum("bthwc,ih,jw->btijc", x, ph, pw)
