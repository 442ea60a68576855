"""PhysNet-style 3-D CNN video backbone, the plain regression baseline, and the
backbone registry (`BACKBONES`: "physnet" here, "cell_tcn" from models/cell_tcn.py).

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

from codephys_jax.models.cell_tcn import CellTCNBackbone
from codephys_jax.models.pooling import adaptive_avg_pool_2d

Array = jax.Array


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


# The cell trunk lives in its own module (models/cell_tcn.py).
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
