"""PhysNet-style 3-D CNN video backbone, the plain regression baseline, and a backbone registry.

The backbone follows the layout of PhysNet (Yu et al., BMVC 2019, encoder-decoder variant):
a 1x5x5 stem, 3x3x3 Conv3D + BatchNorm + ReLU blocks, one spatial max-pool, two
spatio-temporal max-pools (time / 4), one more spatial max-pool, then two temporal
transposed convs (x2 each, BatchNorm + ELU) so time returns to T. Instead of collapsing
space, the output is adaptively average-pooled to ``spatial_out`` x ``spatial_out`` cells:
[B, T, H, W, 3] -> [B, T, spatial_out, spatial_out, output_channels]. For a 128x128 input
the four spatial pools already give 8x8.

Any backbone producing [B, T, H', W', C] can be registered in ``BACKBONES``.
BatchNorm running statistics live in the standard 'batch_stats' collection.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import flax.linen as nn
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


class ConvBNAct(nn.Module):
  """Conv3D + BatchNorm + activation over [B, T, H, W, C]."""

  features: int
  kernel: tuple = (3, 3, 3)
  act: str = "relu"
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    x = nn.Conv(self.features, self.kernel, padding="SAME", use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5)(x)
    return ACTIVATIONS[self.act](x)


class TemporalUpsample(nn.Module):
  """ConvTranspose over time (kernel 4, stride 2, 'SAME' -> exactly x2) + BatchNorm + ELU."""

  features: int
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    x = nn.ConvTranspose(
        self.features, (4, 1, 1), strides=(2, 1, 1), padding="SAME", use_bias=False
    )(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5)(x)
    return nn.elu(x)


ACTIVATIONS = {"relu": nn.relu, "elu": nn.elu, "gelu": nn.gelu}


class PhysNetBackbone(nn.Module):
  """PhysNet encoder-decoder trunk: clip [B, T, H, W, 3] -> features [B, T, s, s, C].

  Fields:
    base_width: width of the stem; blocks use (w, 2w, 4w, 4w...) as in PhysNet (16/32/64).
    output_channels: C of the output features (width of the temporal upsamplers).
    spatial_out: s, adaptive average pooled output grid size.
    dropout: dropout rate on the deepest features (needs a 'dropout' rng when > 0 and train).
    stem_kernel: spatial kernel of the 1xkxk stem.
    bn_momentum: flax BatchNorm momentum (0.9 == PyTorch momentum 0.1).
  """

  base_width: int = 16
  output_channels: int = 64
  spatial_out: int = 8
  dropout: float = 0.0
  stem_kernel: int = 5
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, clip: Array, *, train: bool) -> Array:
    if clip.ndim != 5 or clip.shape[-1] != 3:
      raise ValueError(f"PhysNetBackbone expects clip [B, T, H, W, 3], got shape {clip.shape}")
    if clip.shape[1] % 4:
      raise ValueError(
          f"PhysNetBackbone: T={clip.shape[1]} must be a multiple of 4 (two temporal pools)"
      )
    w, m = self.base_width, self.bn_momentum
    spa = lambda h: nn.max_pool(h, (1, 2, 2), strides=(1, 2, 2))  # noqa: E731
    spatem = lambda h: nn.max_pool(h, (2, 2, 2), strides=(2, 2, 2))  # noqa: E731

    x = ConvBNAct(w, (1, self.stem_kernel, self.stem_kernel), bn_momentum=m, name="block1")(
        clip, train=train
    )
    x = spa(x)
    x = ConvBNAct(2 * w, bn_momentum=m, name="block2")(x, train=train)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block3")(x, train=train)
    x = spatem(x)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block4")(x, train=train)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block5")(x, train=train)
    x = spatem(x)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block6")(x, train=train)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block7")(x, train=train)
    x = spa(x)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block8")(x, train=train)
    x = ConvBNAct(4 * w, bn_momentum=m, name="block9")(x, train=train)
    x = nn.Dropout(self.dropout, deterministic=not train or self.dropout == 0.0)(x)
    x = TemporalUpsample(self.output_channels, bn_momentum=m, name="upsample1")(x, train=train)
    x = TemporalUpsample(self.output_channels, bn_momentum=m, name="upsample2")(x, train=train)
    return adaptive_avg_pool_2d(x, self.spatial_out)


class CellTCNBackbone(nn.Module):
  """Skin-cell trunk: average-pool the face crop to a coarse grid of cells first, then
  (2+1)-D residual blocks on the cell traces: clip [B, T, H, W, 3] -> [B, T, s, s, C].

  The bias every unsupervised rPPG method builds on, as a network: the pulse is a
  sub-percent colour change shared by many skin pixels, so averaging a region
  first raises its SNR by the region's pixel count before anything is learned. A
  1x1x1 colour projection (the learned counterpart of CHROM/POS's projection) is
  followed by `num_blocks` residual blocks, each a temporal conv (kernel
  `temporal_kernel`, dilation 1, 2, 4, ...) and a 3x3 conv across cells (which
  cells are skin, how neighbours agree), BatchNorm + ELU. Much cheaper than
  PhysNet on the same crop (no 3-D convs at pixel resolution).

  Fields:
    grid: cells per side after the first average pool (H and W must be >= grid).
    width: channels of the blocks.
    output_channels: C of the output features.
    spatial_out: s, the output grid (adaptive average pool of the cells).
    num_blocks: residual blocks; block i has temporal dilation 2**i.
    temporal_kernel: temporal kernel size of each block.
    colour_norm: 'batch' (BatchNorm after the colour projection) or 'instance'
      (each projection scaled to unit variance over the clip: per-clip alpha tuning).
    remove_luminance: project each cell's colour change onto the plane orthogonal
      to (1, 1, 1) before the colour projection, the plane POS projects onto. With
      a relative input representation (`relative`, `relative_band`) a change of
      light intensity (flicker, a brightness step, shading as the head turns) is
      the same relative change in R, G and B, so it is removed exactly, whatever
      the training data showed; the blood signature keeps its colour part.
    bn_momentum: flax BatchNorm momentum (0.9 == PyTorch momentum 0.1).
  """

  grid: int = 4
  width: int = 32
  output_channels: int = 64
  spatial_out: int = 2
  num_blocks: int = 4
  temporal_kernel: int = 5
  colour_norm: str = "batch"
  remove_luminance: bool = False
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, clip: Array, *, train: bool) -> Array:
    if self.colour_norm not in ("batch", "instance"):
      raise ValueError(f"colour_norm must be 'batch' or 'instance', got {self.colour_norm!r}")
    if clip.ndim != 5 or clip.shape[-1] != 3:
      raise ValueError(f"CellTCNBackbone expects clip [B, T, H, W, 3], got shape {clip.shape}")
    if min(clip.shape[2:4]) < self.grid:
      raise ValueError(
          f"CellTCNBackbone: a {clip.shape[2]}x{clip.shape[3]} crop has fewer pixels than "
          f"grid={self.grid} cells per side"
      )
    b, t, g, w = clip.shape[0], clip.shape[1], self.grid, self.width

    def norm(h: Array, name: str) -> Array:
      return nn.BatchNorm(
          use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5, name=name
      )(h)

    # Time and cell convs as 1-D / 2-D convs on reshaped views: XLA's CPU 3-D convs
    # with 1-sized kernel axes were 4x slower for the same arithmetic.
    def over_time(h: Array, i: int) -> Array:  # [B, T, g, g, w], conv along T per cell
      h = h.transpose(0, 2, 3, 1, 4).reshape(b * g * g, t, w)
      h = nn.Conv(
          w,
          (self.temporal_kernel,),
          kernel_dilation=(2**i,),
          padding="SAME",
          use_bias=False,
          name=f"block{i}_time",
      )(h)
      return h.reshape(b, g, g, t, w).transpose(0, 3, 1, 2, 4)

    def over_cells(h: Array, i: int) -> Array:  # 3x3 conv across cells per frame
      h = nn.Conv(w, (3, 3), padding="SAME", use_bias=False, name=f"block{i}_cells")(
          h.reshape(b * t, g, g, w)
      )
      return h.reshape(b, t, g, g, w)

    cells = adaptive_avg_pool_2d(clip, g)
    if self.remove_luminance:
      cells = cells - jnp.mean(cells, axis=-1, keepdims=True)
    x = nn.Dense(w, use_bias=False, name="colour")(cells)
    if self.colour_norm == "instance":
      # Each colour projection scaled to unit variance over this clip (all cells
      # together, so skin cells keep their weight over background): the
      # per-clip alpha tuning of CHROM / POS, which a running BatchNorm cannot do.
      x = nn.InstanceNorm(epsilon=1e-5, name="colour_in")(x)
    else:
      x = norm(x, "colour_bn")
    x = nn.elu(x)
    for i in range(self.num_blocks):
      h = nn.elu(norm(over_time(x, i), f"block{i}_time_bn"))
      x = x + nn.elu(norm(over_cells(h, i), f"block{i}_cells_bn"))
    x = nn.elu(norm(nn.Dense(self.output_channels, use_bias=False, name="out")(x), "out_bn"))
    return adaptive_avg_pool_2d(x, self.spatial_out)


BACKBONES = {"physnet": PhysNetBackbone, "cell_tcn": CellTCNBackbone}


def get_backbone(name: str, /, **kwargs: Any) -> nn.Module:
  """Build a registered backbone by name with its constructor fields as kwargs."""
  if name not in BACKBONES:
    raise ValueError(f"Unknown backbone {name!r}; registered: {sorted(BACKBONES)}")
  return BACKBONES[name](**kwargs)


class PhysNetRegression(nn.Module):
  """Ablation baseline: backbone -> spatial mean -> 1x1 conv -> waveform [B, T] (no codebook)."""

  backbone: str = "physnet"
  backbone_kwargs: Optional[Mapping[str, Any]] = None

  @nn.compact
  def __call__(self, clip: Array, *, train: bool) -> dict:
    feats = get_backbone(self.backbone, name="video_backbone", **dict(self.backbone_kwargs or {}))(
        clip, train=train
    )
    pooled = jnp.mean(feats, axis=(2, 3))
    # No bias: the negative-Pearson loss ignores an output offset, so a bias
    # would only get rounding-noise gradients that Adam inflates into drift.
    rppg = nn.Conv(1, (1,), use_bias=False, name="head")(pooled)[..., 0]
    return {"rppg": rppg, "features": feats}
