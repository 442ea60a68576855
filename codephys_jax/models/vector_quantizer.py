"""Vector-quantised codebook for the Stage I PPG autoencoder (and its frozen reuse in Stage II).

Two update rules are supported, selected by ``VectorQuantizer.update``:

* ``'loss'``: the VQ-VAE rule. The codebook is a trainable parameter in the ``'params'``
  collection and the returned loss is ``||sg(z) - q||^2 + beta * ||z - sg(q)||^2``.
* ``'ema'``: the codebook follows exponential moving averages of the code assignment
  counts (``cluster_size``) and of the summed encoder outputs (``embed_sum``), with
  Laplace smoothing of the counts. Codebook, counts and sums live in the non-trainable
  collection ``'vq_state'``; the returned loss is the commitment term only.

The EMA statistics are computed with plain jnp reductions over the whole batch, so under
``jax.jit`` with a sharded batch they are global-batch sums without any axis names.

Dead codes are restarted by the pure function :func:`restart_dead_codes`, which the
train step calls on the ``'vq_state'`` collection; it is jit-safe (no value branching).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

VQ_STATE = "vq_state"
UPDATE_RULES = ("ema", "loss")


@flax.struct.dataclass
class VQOutput:
  """Result of a quantisation call.

  quantized: straight-through codes, [B, L, D]; equals the selected codes in value, and
    its gradient with respect to the encoder output is the identity.
  indices: int32 nearest-code indices, [B, L].
  loss: scalar VQ loss (codebook + beta * commitment for 'loss'; beta * commitment for 'ema').
  perplexity: exp(entropy) of the batch code-usage distribution.
  usage: fraction of the K codes selected at least once in the batch.
  distances: squared L2 distances to every code, [B, L, K].
  """

  quantized: Array
  indices: Array
  loss: Array
  perplexity: Array
  usage: Array
  distances: Array


def codebook_init(key: Array, shape: Tuple[int, int], dtype: Any = jnp.float32) -> Array:
  """Uniform init giving codes of roughly unit norm regardless of code_dim."""
  return nn.initializers.variance_scaling(1.0, "fan_out", "uniform")(key, shape, dtype)


def squared_distances(z: Array, codebook: Array) -> Array:
  """Squared L2 distances between vectors z [..., D] and codes [K, D] -> [..., K]."""
  z2 = jnp.sum(z * z, axis=-1, keepdims=True)
  e2 = jnp.sum(codebook * codebook, axis=-1)
  return z2 - 2.0 * jnp.einsum("...d,kd->...k", z, codebook) + e2


def code_statistics(indices: Array, num_codes: int) -> Tuple[Array, Array]:
  """(perplexity, usage) of a batch of code indices."""
  onehot = jax.nn.one_hot(indices.reshape(-1), num_codes, dtype=jnp.float32)
  probs = jnp.mean(onehot, axis=0)
  entropy = -jnp.sum(probs * jnp.log(jnp.where(probs > 0, probs, 1.0)))
  usage = jnp.mean((probs > 0).astype(jnp.float32))
  return jnp.exp(entropy), usage


def laplace_smoothed_codebook(cluster_size: Array, embed_sum: Array, epsilon: float) -> Array:
  """Codebook from EMA counts and sums; smoothing keeps never-used codes finite."""
  n = jnp.sum(cluster_size)
  k = cluster_size.shape[0]
  smoothed = (cluster_size + epsilon) / (n + k * epsilon) * n
  return embed_sum / smoothed[:, None]


def ema_update(
    state: Mapping[str, Array], z_flat: Array, indices_flat: Array, *, decay: float, epsilon: float
) -> dict:
  """One EMA step of (cluster_size, embed_sum, codebook) given assignments of z_flat [N, D]."""
  num_codes = state["cluster_size"].shape[0]
  onehot = jax.nn.one_hot(indices_flat, num_codes, dtype=z_flat.dtype)
  counts = jnp.sum(onehot, axis=0)
  sums = onehot.T @ z_flat
  cluster_size = decay * state["cluster_size"] + (1.0 - decay) * counts
  embed_sum = decay * state["embed_sum"] + (1.0 - decay) * sums
  codebook = laplace_smoothed_codebook(cluster_size, embed_sum, epsilon)
  return {"codebook": codebook, "cluster_size": cluster_size, "embed_sum": embed_sum}


def _restart_leaf(state: Mapping[str, Array], z_flat: Array, rng: Array, threshold: float) -> dict:
  num_codes = state["cluster_size"].shape[0]
  z_flat = jax.lax.stop_gradient(z_flat.reshape(-1, state["codebook"].shape[-1]))
  picks = jax.random.randint(rng, (num_codes,), 0, z_flat.shape[0])
  candidates = z_flat[picks].astype(state["codebook"].dtype)
  dead = state["cluster_size"] < threshold
  # A restarted code gets count 1 and sum equal to its new value, so that
  # codebook ~= embed_sum / cluster_size stays true and the next EMA step moves it smoothly.
  cluster_size = jnp.where(dead, jnp.ones_like(state["cluster_size"]), state["cluster_size"])
  codebook = jnp.where(dead[:, None], candidates, state["codebook"])
  embed_sum = jnp.where(dead[:, None], candidates, state["embed_sum"])
  return {"codebook": codebook, "cluster_size": cluster_size, "embed_sum": embed_sum}


def restart_dead_codes(
    vq_state: Mapping[str, Any], z_flat: Array, rng: Array, *, threshold: float = 0.1
) -> dict:
  """Re-seed codes whose EMA count is below ``threshold`` with random rows of ``z_flat``.

  ``vq_state`` is either one quantizer's state ({'codebook', 'cluster_size', 'embed_sum'})
  or any nesting of such dicts (e.g. the whole 'vq_state' collection of a model); every
  quantizer found is restarted from the same encoder outputs ``z_flat`` [N, D] (or
  [B, L, D]). Pass the quantizer's ``dead_code_threshold`` as ``threshold``. Pure and
  jit-safe: live codes pass through unchanged via jnp.where.
  """
  if "cluster_size" in vq_state:
    missing = {"codebook", "embed_sum"} - set(vq_state)
    if missing:
      raise ValueError(f"restart_dead_codes: vq_state lacks {sorted(missing)}")
    return _restart_leaf(vq_state, z_flat, rng, threshold)
  if not vq_state:
    raise ValueError("restart_dead_codes: vq_state holds no quantizer state (was update='loss'?)")
  out = {}
  for i, (name, sub) in enumerate(sorted(vq_state.items())):
    out[name] = restart_dead_codes(sub, z_flat, jax.random.fold_in(rng, i), threshold=threshold)
  return out


def straight_through(z: Array, q: Array) -> Array:
  """Forward value q, gradient of identity with respect to z."""
  return z + jax.lax.stop_gradient(q - z)


class VectorQuantizer(nn.Module):
  """Nearest-code vector quantizer with VQ-VAE ('loss') or EMA ('ema') codebook updates.

  Fields:
    num_codes: codebook size K.
    code_dim: code dimension D (must match z's last axis).
    beta: commitment weight.
    update: 'ema' (codebook in the 'vq_state' collection) or 'loss' (codebook in 'params').
    ema_decay: decay of the EMA counts and sums.
    epsilon: Laplace smoothing of the EMA counts.
    dead_code_threshold: EMA count below which restart_dead_codes re-seeds a code.
    stop_gradient_codebook: read the codebook through stop_gradient (frozen reuse in Stage II).
  """

  num_codes: int = 64
  code_dim: int = 64
  beta: float = 0.25
  update: str = "ema"
  ema_decay: float = 0.99
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.1
  stop_gradient_codebook: bool = False
  codebook_init: Callable[..., Array] = codebook_init

  def setup(self) -> None:
    if self.update not in UPDATE_RULES:
      raise ValueError(f"VectorQuantizer.update must be one of {UPDATE_RULES}, got {self.update!r}")
    shape = (self.num_codes, self.code_dim)
    if self.update == "loss":
      self._codebook_param = self.param("codebook", self.codebook_init, shape)
    else:
      init_key = lambda: self.make_rng("params")  # noqa: E731 (only called at init)
      self._codebook_var = self.variable(
          VQ_STATE, "codebook", lambda: self.codebook_init(init_key(), shape)
      )
      # Initial count 1 and sum = code keeps codebook == embed_sum / cluster_size from step 0.
      self._cluster_size = self.variable(
          VQ_STATE, "cluster_size", lambda: jnp.ones((self.num_codes,), jnp.float32)
      )
      self._embed_sum = self.variable(VQ_STATE, "embed_sum", lambda: self._codebook_var.value)

  def get_codebook(self) -> Array:
    """The [K, D] codebook (through stop_gradient for 'ema' and when frozen)."""
    if self.update == "loss":
      cb = self._codebook_param
    else:
      cb = jax.lax.stop_gradient(self._codebook_var.value)
    return jax.lax.stop_gradient(cb) if self.stop_gradient_codebook else cb

  def embed(self, indices: Array) -> Array:
    """Look up codes by integer index: [...] -> [..., D]."""
    return jnp.take(self.get_codebook(), indices, axis=0)

  def soft_quantize(self, z: Array, temperature: float) -> Tuple[Array, Array]:
    """Soft attention over codes: softmax(-||z - e_k||^2 / temperature) @ codebook.

    Returns (soft codes [..., D], weights [..., K]). As temperature -> 0 this tends to
    the nearest code.
    """
    codebook = self.get_codebook()
    weights = jax.nn.softmax(-squared_distances(z, codebook) / temperature, axis=-1)
    return weights @ codebook, weights

  def __call__(self, z: Array, *, train: bool) -> VQOutput:
    if z.shape[-1] != self.code_dim:
      raise ValueError(
          f"VectorQuantizer: z has last dim {z.shape[-1]}, code_dim is {self.code_dim}"
      )
    codebook = self.get_codebook()
    distances = squared_distances(z, codebook)
    indices = jnp.argmin(distances, axis=-1).astype(jnp.int32)
    q = jnp.take(codebook, indices, axis=0)

    commitment = jnp.mean(jnp.square(z - jax.lax.stop_gradient(q)))
    if self.update == "loss":
      codebook_term = jnp.mean(jnp.square(jax.lax.stop_gradient(z) - q))
      loss = codebook_term + self.beta * commitment
    else:
      loss = self.beta * commitment
      if train and self.is_mutable_collection(VQ_STATE) and not self.is_initializing():
        state = {
            "codebook": self._codebook_var.value,
            "cluster_size": self._cluster_size.value,
            "embed_sum": self._embed_sum.value,
        }
        z_flat = jax.lax.stop_gradient(z.reshape(-1, self.code_dim)).astype(jnp.float32)
        new = ema_update(
            state, z_flat, indices.reshape(-1), decay=self.ema_decay, epsilon=self.epsilon
        )
        self._codebook_var.value = new["codebook"]
        self._cluster_size.value = new["cluster_size"]
        self._embed_sum.value = new["embed_sum"]

    perplexity, usage = code_statistics(indices, self.num_codes)
    return VQOutput(
        quantized=straight_through(z, q),
        indices=indices,
        loss=loss,
        perplexity=perplexity,
        usage=usage,
        distances=distances,
    )
