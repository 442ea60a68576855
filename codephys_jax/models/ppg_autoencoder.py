"""Stage I: a VQ autoencoder over clean contact-PPG clips (the PPG codebook).

Shapes: ppg [B, T] -> encoder trunk [B, T, hidden] -> strided conv -> z_e [B, T/s, D]
-> VectorQuantizer -> z_q [B, T/s, D] -> decoder -> recon [B, T], with s = ``downsample``
(4 by default, so T = 160 gives 40 tokens).

Parameter tree of ``PPGAutoencoder`` ('params'): ``encoder`` (``stem``, ``blocks_{i}``,
``down``), ``quantizer`` (``codebook`` only when update='loss'), ``decoder`` (``stem``,
``blocks_{i}``, ``up``, ``head``) and, when ``teacher_dim`` is set, ``teacher_proj``.
EMA codebook state lives in the 'vq_state' collection under ``quantizer``.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from codephys_jax.models.vector_quantizer import VectorQuantizer

Array = jax.Array


class ResBlock1D(nn.Module):
  """x + LayerNorm(GELU(Conv_k(x))): a residual 1-D conv block over [B, T, C]."""

  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = nn.Conv(x.shape[-1], (self.kernel_size,), padding="SAME", name="conv")(x)
    h = nn.gelu(h)
    h = nn.LayerNorm(name="norm")(h)
    return x + h


class PPGEncoder(nn.Module):
  """Conv stem (kernel 1) -> residual blocks -> strided large-kernel conv to code_dim."""

  hidden: int = 512
  code_dim: int = 64
  num_res_blocks: int = 2
  res_kernel: int = 3
  down_kernel: int = 5
  downsample: int = 4

  def setup(self) -> None:
    self.stem = nn.Conv(self.hidden, (1,))
    self.blocks = [ResBlock1D(self.res_kernel) for _ in range(self.num_res_blocks)]
    self.down = nn.Conv(
        self.code_dim, (self.down_kernel,), strides=(self.downsample,), padding="SAME"
    )

  def trunk(self, ppg: Array) -> Array:
    """Features before the strided conv, [B, T, hidden] (the Stage II teacher trunk)."""
    h = self.stem(ppg[..., None])
    for block in self.blocks:
      h = block(h)
    return h

  def __call__(self, ppg: Array) -> Array:
    return self.down(self.trunk(ppg))


class PPGDecoder(nn.Module):
  """Conv stem -> residual blocks -> transposed conv (x upsample) -> GELU -> 1x1 conv -> [B, T]."""

  hidden: int = 512
  num_res_blocks: int = 2
  res_kernel: int = 3
  up_kernel: int = 5
  downsample: int = 4

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = nn.Conv(self.hidden, (self.res_kernel,), padding="SAME", name="stem")(z)
    for i in range(self.num_res_blocks):
      h = ResBlock1D(self.res_kernel, name=f"blocks_{i}")(h)
    h = nn.ConvTranspose(
        self.hidden, (self.up_kernel,), strides=(self.downsample,), padding="SAME", name="up"
    )(h)
    h = nn.gelu(h)
    return nn.Conv(1, (1,), name="head")(h)[..., 0]


def encoder_like(arch: nn.Module, **kwargs) -> PPGEncoder:
  """The PPGEncoder of a module carrying the Stage I architecture fields (``hidden``,
  ``code_dim``, ``num_res_blocks``, ``res_kernel``, ``down_kernel``, ``downsample``):
  PPGAutoencoder, and CodePhys which must mirror it to load its params. ``kwargs``
  (e.g. ``parent=None``) go to the constructor."""
  return PPGEncoder(
      hidden=arch.hidden,
      code_dim=arch.code_dim,
      num_res_blocks=arch.num_res_blocks,
      res_kernel=arch.res_kernel,
      down_kernel=arch.down_kernel,
      downsample=arch.downsample,
      **kwargs,
  )


def decoder_like(arch: nn.Module, **kwargs) -> PPGDecoder:
  """The PPGDecoder matching ``encoder_like(arch)``: its transposed conv mirrors the
  encoder's strided one (``up_kernel = down_kernel``)."""
  return PPGDecoder(
      hidden=arch.hidden,
      num_res_blocks=arch.num_res_blocks,
      res_kernel=arch.res_kernel,
      up_kernel=arch.down_kernel,
      downsample=arch.downsample,
      **kwargs,
  )


class PPGAutoencoder(nn.Module):
  """Encoder + VectorQuantizer + decoder. ``teacher_dim`` adds a Dense projection of the
  encoder trunk for Stage II distillation (None: the trunk is returned unprojected)."""

  hidden: int = 512
  code_dim: int = 64
  num_codes: int = 64
  num_res_blocks: int = 2
  res_kernel: int = 3
  down_kernel: int = 5
  downsample: int = 4
  beta: float = 0.25
  update: str = "ema"
  ema_decay: float = 0.99
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.1
  teacher_dim: Optional[int] = None

  def setup(self) -> None:
    self.encoder = encoder_like(self)
    self.quantizer = VectorQuantizer(
        num_codes=self.num_codes,
        code_dim=self.code_dim,
        beta=self.beta,
        update=self.update,
        ema_decay=self.ema_decay,
        epsilon=self.epsilon,
        dead_code_threshold=self.dead_code_threshold,
    )
    self.decoder = decoder_like(self)
    if self.teacher_dim is not None:
      self.teacher_proj = nn.Dense(self.teacher_dim)

  def _check_length(self, ppg: Array) -> None:
    if ppg.ndim != 2:
      raise ValueError(f"PPGAutoencoder expects ppg [B, T], got shape {ppg.shape}")
    if ppg.shape[1] % self.downsample:
      raise ValueError(
          f"PPGAutoencoder: T={ppg.shape[1]} must be a multiple of downsample={self.downsample}"
      )

  def encode(self, ppg: Array) -> Array:
    """ppg [B, T] -> continuous tokens z_e [B, T/downsample, code_dim]."""
    self._check_length(ppg)
    return self.encoder(ppg)

  def quantize(self, z_e: Array, *, train: bool = False):
    """z_e [B, L, D] -> VQOutput (see codebook.VQOutput)."""
    return self.quantizer(z_e, train=train)

  def decode(self, z_q: Array) -> Array:
    """Tokens [B, L, D] -> waveform [B, L * downsample]."""
    return self.decoder(z_q)

  def embed(self, indices: Array) -> Array:
    """Code indices [B, L] -> codes [B, L, D]."""
    return self.quantizer.embed(indices)

  def teacher_features(self, ppg: Array) -> Array:
    """Encoder trunk features [B, T, hidden], projected to teacher_dim when set."""
    self._check_length(ppg)
    h = self.encoder.trunk(ppg)
    return self.teacher_proj(h) if self.teacher_dim is not None else h

  def __call__(self, ppg: Array, *, train: bool) -> dict:
    z_e = self.encode(ppg)
    vq = self.quantize(z_e, train=train)
    recon = self.decode(vq.quantized)
    if self.teacher_dim is not None and self.is_initializing():
      # Create the projection's params at init so teacher_features works with these variables.
      self.teacher_features(ppg)
    return {
        "recon": recon,
        "z_e": z_e,
        "z_q": vq.quantized,
        "indices": vq.indices,
        "vq_loss": vq.loss,
        "perplexity": vq.perplexity,
        "usage": vq.usage,
    }
