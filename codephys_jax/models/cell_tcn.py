"""The skin-cell trunk `CellTCNBackbone` (registered as backbone "cell_tcn" in models/physnet.py)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from codephys_jax.models.pooling import adaptive_avg_pool_2d

Array = jax.Array


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
