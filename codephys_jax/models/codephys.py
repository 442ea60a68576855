"""Stage II CodePhys: video features query the frozen Stage I PPG codebook.

clip [B, T, H, W, 3] -> backbone -> features [B, T, H', W', C]
  -> SpatialAttention -> w [B, H', W'] -> attention-weighted mean over cells -> [B, T, C]
  -> temporal compression conv (kernel 5, stride 4) -> queries [B, T/4, D]
  -> matching ('nearest' | 'soft' | 'transformer') against the Stage I codebook
  -> Stage I decoder -> rppg [B, T].

Parameter tree ('params'):
  video_backbone, spatial_attention, query_proj, code_head (transformer mode only)
    -- trainable Stage II parts;
  teacher_proj -- the teacher's projection to the feature width: a fixed random map,
    frozen (see FROZEN);
  stage1_encoder (PPGEncoder: teacher trunk and ground-truth code indices),
  stage1_codebook ({'codebook': [K, D]}), stage1_decoder (PPGDecoder)
    -- Stage I parts, loaded with ``stage1_subtrees`` and merged into the tree.

Freezing. ``FROZEN`` / ``CodePhys.frozen_subtrees()`` is the one definition of the
subtrees that training never updates; the trainer masks them in the optimizer
(``optax.multi_transform({'trainable': tx, 'frozen': optax.set_to_zero()},
param_labels(params, frozen=model.frozen_subtrees()))``), so weight decay does not
shrink them either. They are the three Stage I subtrees and ``teacher_proj``;
``freeze_teacher=False`` takes ``stage1_encoder`` out of the set. Separately, inside
the model, ``freeze_stage1=True`` reads the codebook and decoder *parameters* through
``jax.lax.stop_gradient`` (the Stage I encoder/decoder param subtrees are held as
single params and applied functionally with their own module definitions), so their
gradients are exactly zero while gradients still flow through the decoder's
activations to the queries and backbone; ``freeze_teacher=True`` does the same for
``stage1_encoder``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from codephys_jax.models.vector_quantizer import VectorQuantizer, code_statistics, squared_distances
from codephys_jax.models.physnet import get_backbone
from codephys_jax.models.ppg_autoencoder import PPGDecoder, PPGEncoder, decoder_like, encoder_like

Array = jax.Array

STAGE1_SUBTREES = ("stage1_encoder", "stage1_codebook", "stage1_decoder")
# Parameter subtrees that training never updates (module docstring, "Freezing").
# teacher_proj is among them: the teacher is a fixed target, and its projection
# a fixed random map of the Stage I trunk.
FROZEN = STAGE1_SUBTREES + ("teacher_proj",)


class SpatialAttention(nn.Module):
  """CBAM-style spatial attention over a clip's feature grid.

  features [B, T, H, W, C] -> mean and max over (T, C) -> [B, H, W, 2] -> kxk conv -> sigmoid
  -> w [B, H, W] in (0, 1).
  """

  kernel_size: int = 7

  @nn.compact
  def __call__(self, features: Array) -> Array:
    mean_map = jnp.mean(features, axis=(1, 4))
    max_map = jnp.max(features, axis=(1, 4))
    maps = jnp.stack([mean_map, max_map], axis=-1)
    logits = nn.Conv(1, (self.kernel_size, self.kernel_size), padding="SAME", name="conv")(maps)
    return jax.nn.sigmoid(logits[..., 0])


def attention_pool(features: Array, attention: Array, *, eps: float = 1e-6) -> Array:
  """Weighted mean over cells: sum_hw w * f / sum_hw w, [B, T, H, W, C] x [B, H, W] -> [B, T, C]."""
  num = jnp.einsum("bthwc,bhw->btc", features, attention)
  den = jnp.sum(attention, axis=(1, 2))[:, None, None] + eps
  return num / den


class TransformerBlock(nn.Module):
  """Pre-norm transformer encoder block."""

  dim: int
  heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    det = not train or self.dropout == 0.0
    h = nn.LayerNorm()(x)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.heads, dropout_rate=self.dropout, deterministic=det
    )(h, h)
    x = x + nn.Dropout(self.dropout, deterministic=det)(h)
    h = nn.LayerNorm()(x)
    h = nn.Dense(self.dim * self.mlp_ratio)(h)
    h = nn.gelu(h)
    h = nn.Dense(self.dim)(h)
    return x + nn.Dropout(self.dropout, deterministic=det)(h)


class CodePredictionHead(nn.Module):
  """Small transformer over query tokens -> logits over the K codes (CodeFormer-style)."""

  num_codes: int = 64
  dim: int = 128
  depth: int = 2
  heads: int = 4
  mlp_ratio: int = 4
  dropout: float = 0.0

  @nn.compact
  def __call__(self, queries: Array, *, train: bool) -> Array:
    x = nn.Dense(self.dim, name="in_proj")(queries)
    pos = self.param("pos_embed", nn.initializers.normal(0.02), (1, queries.shape[1], self.dim))
    x = x + pos
    for i in range(self.depth):
      x = TransformerBlock(self.dim, self.heads, self.mlp_ratio, self.dropout, name=f"block_{i}")(
          x, train=train
      )
    x = nn.LayerNorm(name="out_norm")(x)
    return nn.Dense(self.num_codes, name="logits")(x)


def _distance_logits(model: "CodePhys", queries: Array) -> Array:
  """Code logits of the distance-based modes: -||q - e_k||^2 / temperature [B, L, K].

  They give 'nearest' and 'soft' a code cross-entropy on the ground-truth indices:
  a push towards the right code and away from every other one, which the
  straight-through query alone lacks (queries then pile onto one or two codes).
  """
  codebook = model.stage1_codebook.get_codebook()
  return -squared_distances(queries, codebook) / (code_spacing(codebook) * model.temperature)


def code_spacing(codebook: Array) -> Array:
  """Mean squared distance from each code to its nearest other code (a constant of the
  frozen codebook). Dividing distances by it makes the logits scale-free: raw squared
  distances of a Stage I codebook are tens of units apart, so temperature 1 gave a
  one-hot softmax, a code CE of ~25 and gradients that the clip norm cut to nothing.
  The argmax (the nearest code) is unchanged."""
  cb = jax.lax.stop_gradient(codebook)
  d = squared_distances(cb, cb) + jnp.eye(cb.shape[0], dtype=cb.dtype) * jnp.finfo(cb.dtype).max
  return jnp.mean(jnp.min(d, axis=-1)) + 1e-6


def _match_nearest(model: "CodePhys", queries: Array, train: bool) -> dict:
  vq = model.stage1_codebook(queries, train=False)
  return {
      "quantized": vq.quantized,
      "indices": vq.indices,
      "code_logits": _distance_logits(model, queries),
  }


def _match_soft(model: "CodePhys", queries: Array, train: bool) -> dict:
  codebook = model.stage1_codebook.get_codebook()
  logits = -squared_distances(queries, codebook) / model.temperature
  quantized = jax.nn.softmax(logits, axis=-1) @ codebook
  return {
      "quantized": quantized,
      "indices": jnp.argmax(logits, -1).astype(jnp.int32),
      "code_logits": _distance_logits(model, queries),
  }


def _match_transformer(model: "CodePhys", queries: Array, train: bool) -> dict:
  logits = model.code_head(queries, train=train)
  codebook = model.stage1_codebook.get_codebook()
  probs = jax.nn.softmax(logits / model.temperature, axis=-1)
  indices = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  weights = DECODE_WEIGHTS[model.transformer_decode](probs, indices, model.num_codes)
  return {"quantized": weights @ codebook, "indices": indices, "code_logits": logits}


# 'argmax' decodes the hard codes in value while passing softmax gradients (straight-through);
# 'soft' decodes the probability-weighted mixture of codes.
DECODE_WEIGHTS = {
    "argmax": lambda p, idx, k: jax.nn.one_hot(idx, k, dtype=p.dtype)
    + p
    - jax.lax.stop_gradient(p),
    "soft": lambda p, idx, k: p,
}
QUERY_MODES = {"nearest": _match_nearest, "soft": _match_soft, "transformer": _match_transformer}


class CodePhys(nn.Module):
  """Stage II model. Fields (all config-settable):

  backbone, backbone_kwargs: registered video backbone and its constructor fields.
  query_mode: 'nearest' | 'soft' | 'transformer'.
  num_codes, code_dim, hidden, num_res_blocks, res_kernel, down_kernel, downsample:
    must mirror the Stage I PPGAutoencoder so its params load.
  temperature: soft-matching temperature (also scales transformer logits for 'soft' decode).
  transformer_depth, transformer_heads, transformer_dim, transformer_mlp_ratio,
  transformer_dropout, transformer_decode ('argmax' | 'soft').
  attention_kernel: kernel of the spatial attention conv.
  teacher_projection: project the teacher trunk [B, T, hidden] to the feature width C.
  feature_dim: C for that projection (None: the backbone's output_channels field).
  freeze_stage1: stop_gradient on the Stage I codebook and decoder params.
  freeze_teacher: stop_gradient on the Stage I encoder (teacher trunk) params, and
    keep it in ``frozen_subtrees()``.
  """

  backbone: str = "physnet"
  backbone_kwargs: Optional[Mapping[str, Any]] = None
  query_mode: str = "nearest"
  num_codes: int = 64
  code_dim: int = 64
  hidden: int = 512
  num_res_blocks: int = 2
  res_kernel: int = 3
  down_kernel: int = 5
  downsample: int = 4
  temperature: float = 1.0
  transformer_depth: int = 2
  transformer_heads: int = 4
  transformer_dim: int = 128
  transformer_mlp_ratio: int = 4
  transformer_dropout: float = 0.0
  transformer_decode: str = "argmax"
  attention_kernel: int = 7
  teacher_projection: bool = True
  feature_dim: Optional[int] = None
  freeze_stage1: bool = True
  freeze_teacher: bool = True

  def setup(self) -> None:
    if self.query_mode not in QUERY_MODES:
      raise ValueError(
          f"CodePhys.query_mode must be one of {sorted(QUERY_MODES)}, got {self.query_mode!r}"
      )
    if self.transformer_decode not in DECODE_WEIGHTS:
      raise ValueError(
          f"CodePhys.transformer_decode must be one of {sorted(DECODE_WEIGHTS)}, got {self.transformer_decode!r}"
      )
    self.video_backbone = get_backbone(self.backbone, **dict(self.backbone_kwargs or {}))
    self.spatial_attention = SpatialAttention(self.attention_kernel)
    self.query_proj = nn.Conv(
        self.code_dim, (self.down_kernel,), strides=(self.downsample,), padding="SAME"
    )
    if self.query_mode == "transformer":
      self.code_head = CodePredictionHead(
          num_codes=self.num_codes,
          dim=self.transformer_dim,
          depth=self.transformer_depth,
          heads=self.transformer_heads,
          mlp_ratio=self.transformer_mlp_ratio,
          dropout=self.transformer_dropout,
      )
    # The codebook is a (frozen) param here whatever Stage I's update rule was.
    self.stage1_codebook = VectorQuantizer(
        num_codes=self.num_codes,
        code_dim=self.code_dim,
        update="loss",
        stop_gradient_codebook=self.freeze_stage1,
    )
    if self.teacher_projection:
      width = (
          self.feature_dim
          if self.feature_dim is not None
          else getattr(self.video_backbone, "output_channels", None)
      )
      if width is None:
        raise ValueError(
            f"CodePhys: set feature_dim; backbone {self.backbone!r} has no output_channels field"
        )
      self.teacher_proj = nn.Dense(width)
    # Stage I encoder / decoder are held as whole param subtrees and applied functionally,
    # so stop_gradient can act on their parameters (not on activations).
    self._stage1_encoder_params = self.param(
        "stage1_encoder",
        lambda rng: self._encoder_def().init(rng, jnp.zeros((1, 4 * self.downsample)))["params"],
    )
    self._stage1_decoder_params = self.param(
        "stage1_decoder",
        lambda rng: self._decoder_def().init(rng, jnp.zeros((1, 4, self.code_dim)))["params"],
    )

  @nn.nowrap
  def frozen_subtrees(self) -> tuple:
    """The param subtrees training never updates: ``FROZEN``, less ``stage1_encoder``
    when ``freeze_teacher=False``."""
    return tuple(k for k in FROZEN if self.freeze_teacher or k != "stage1_encoder")

  @nn.nowrap
  def _encoder_def(self) -> PPGEncoder:
    return encoder_like(self, parent=None)

  @nn.nowrap
  def _decoder_def(self) -> PPGDecoder:
    return decoder_like(self, parent=None)

  def _frozen_if(self, params: Any, freeze: bool) -> Any:
    return jax.tree.map(jax.lax.stop_gradient, params) if freeze else params

  def stage1_decode(self, quantized: Array) -> Array:
    """Stage I decoder: tokens [B, L, D] -> waveform [B, L * downsample]."""
    params = self._frozen_if(self._stage1_decoder_params, self.freeze_stage1)
    return self._decoder_def().apply({"params": params}, quantized)

  def stage1_encode(self, ppg: Array) -> tuple:
    """Stage I encoder: ppg [B, T] -> (trunk [B, T, hidden], z_e [B, T / downsample, D])."""
    params = self._frozen_if(self._stage1_encoder_params, self.freeze_teacher)
    enc = self._encoder_def()
    trunk = enc.apply({"params": params}, ppg, method=PPGEncoder.trunk)
    z_e = enc.apply({"params": params}, trunk, method=lambda m, h: m.down(h))
    return trunk, z_e

  def targets(self, ppg: Array) -> dict:
    """Ground-truth side from the Stage I encoder and codebook, for the Stage II losses.

    ppg [B, T] -> teacher [B, T, C or hidden] (C = backbone feature width when
    teacher_projection), target_quantized [B, L, D], target_indices [B, L].
    The targets are stop-gradiented; the teacher is trainable unless freeze_teacher.
    """
    trunk, z_e = self.stage1_encode(ppg)
    vq = self.stage1_codebook(jax.lax.stop_gradient(z_e), train=False)
    teacher = self.teacher_proj(trunk) if self.teacher_projection else trunk
    return {
        "teacher": teacher,
        "target_quantized": jax.lax.stop_gradient(vq.quantized),
        "target_indices": vq.indices,
    }

  def __call__(self, clip: Array, *, train: bool, soft_mix: Any = 0.0) -> dict:
    """clip [B, T, H, W, 3] -> outputs (see the module doc).

    ``soft_mix`` in [0, 1] (a traced scalar is fine) blends the matched codes with
    the soft, distance-weighted mixture of all codes: (1 - a) * matched + a * soft.
    Training ramps it from 1 to 0 (soft-query warm-up) so that early gradients
    reach every code instead of the one or two the first queries land on;
    inference uses 0, the matching mode alone.
    """
    if clip.shape[1] % self.downsample:
      raise ValueError(
          f"CodePhys: T={clip.shape[1]} must be a multiple of downsample={self.downsample}"
      )
    features = self.video_backbone(clip, train=train)
    attention = self.spatial_attention(features)
    pooled = attention_pool(features, attention)
    queries = self.query_proj(pooled)
    matched = QUERY_MODES[self.query_mode](self, queries, train)
    quantized = matched["quantized"]
    if not (isinstance(soft_mix, (int, float)) and soft_mix == 0.0):
      logits = _distance_logits(self, queries)
      soft = jax.nn.softmax(logits, axis=-1) @ self.stage1_codebook.get_codebook()
      a = jnp.asarray(soft_mix, quantized.dtype)
      quantized = (1.0 - a) * quantized + a * soft
    rppg = self.stage1_decode(quantized)
    perplexity, usage = code_statistics(matched["indices"], self.num_codes)
    if self.is_initializing() and self.teacher_projection:
      # Create the teacher projection params at init so `targets` works with these variables.
      self.targets(jnp.zeros(clip.shape[:2], clip.dtype))
    return {
        "rppg": rppg,
        "features": features,
        "attention": attention,
        "queries": queries,
        "quantized": quantized,
        "indices": matched["indices"],
        "code_logits": matched["code_logits"],
        "perplexity": perplexity,
        "usage": usage,
    }


def stage1_subtrees(
    stage1_params: Mapping[str, Any], *, vq_state: Optional[Mapping[str, Any]] = None
) -> dict:
  """Map a Stage I PPGAutoencoder tree onto CodePhys param names.

  ``stage1_params`` is the PPGAutoencoder 'params' tree (or a full variables dict with
  'params' and optionally 'vq_state'). The codebook is taken from params['quantizer']
  (update='loss') or from vq_state['quantizer'] (update='ema'). Returns
  {'stage1_encoder', 'stage1_codebook': {'codebook'}, 'stage1_decoder'}, ready to merge
  into CodePhys params: ``{**codephys_params, **stage1_subtrees(stage1_vars)}``.
  """
  if "params" in stage1_params:
    vq_state = vq_state if vq_state is not None else stage1_params.get("vq_state")
    stage1_params = stage1_params["params"]
  for key in ("encoder", "decoder"):
    if key not in stage1_params:
      raise ValueError(
          f"stage1_subtrees: Stage I params lack {key!r}; got keys {sorted(stage1_params)}"
      )
  if "codebook" in stage1_params.get("quantizer", {}):
    codebook = stage1_params["quantizer"]["codebook"]
  elif vq_state is not None and "codebook" in vq_state.get("quantizer", {}):
    codebook = vq_state["quantizer"]["codebook"]
  else:
    raise ValueError("stage1_subtrees: no codebook in params['quantizer'] or vq_state['quantizer']")
  return {
      "stage1_encoder": stage1_params["encoder"],
      "stage1_codebook": {"codebook": codebook},
      "stage1_decoder": stage1_params["decoder"],
  }


def param_labels(params: Mapping[str, Any], *, frozen: Sequence[str]) -> dict:
  """'frozen' / 'trainable' label tree for optax.multi_transform: every leaf of the
  top-level subtrees named in ``frozen`` (e.g. ``model.frozen_subtrees()``) is 'frozen'."""
  return {
      k: jax.tree.map(lambda _: "frozen" if k in frozen else "trainable", v)
      for k, v in params.items()
  }
