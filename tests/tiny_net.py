"""The tiny model of the trainer, checkpointing and multi-process tests.

Conv + BatchNorm + Dropout + Dense on (batch, time, channels) signals: it has
parameters, batch statistics and an RNG stream, all that `codephys_jax.trainer`
and `checkpointing` carry. Importable as `tiny_net` from the test modules and
from tests/distributed_worker.py (a script in this folder).
"""

import flax.linen as nn
import jax.numpy as jnp


class TinyNet(nn.Module):
  features: int = 3
  momentum: float = 0.99  # flax's default
  dropout: float = 0.2

  @nn.compact
  def __call__(self, x, *, train: bool):
    # No conv bias: BatchNorm cancels it, its gradient is pure rounding noise, and
    # Adam would amplify that noise into device-count-dependent updates.
    x = nn.Conv(self.features, (3,), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
    return nn.Dense(1)(x.mean(axis=1))[:, 0]


def init_fn(model: nn.Module):
  """`trainer.create_train_state`'s init_fn for batches {"x", "y"}."""
  return lambda rng, batch: model.init(rng, batch["x"], train=False)


def mse_loss_fn(model: nn.Module, *, metrics=None):
  """A `trainer` loss_fn: mean squared error of the prediction to batch["y"], with
  BatchNorm statistics as model state and dropout on the step's RNG.
  `metrics(pred, step)` adds metrics to the loss."""

  def loss_fn(params, model_state, batch, rng, step):
    pred, updates = model.apply(
        {"params": params, **model_state},
        batch["x"],
        train=True,
        rngs={"dropout": rng},
        mutable=["batch_stats"],
    )
    loss = jnp.mean((pred - batch["y"]) ** 2)
    return loss, (dict(updates), {} if metrics is None else metrics(pred, step))

  return loss_fn
