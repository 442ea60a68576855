"""Training-step time of each registered video backbone, side by side in one run.

  ./run.sh python benchmarks/backbones.py [--size=16] [--frames=64] [--batch=4] [--steps=10]

Each backbone is wrapped in the no-codebook regression head (`PhysNetRegression`)
with the widths of configs/default.py (the cell trunk's own fields from that
file; PhysNet at the width of the earlier 16 px demo, base_width 8), and one
jitted training step (forward, negative Pearson, backward, BatchNorm statistics,
an SGD update) is timed on the same random batch: median of `--steps` calls,
each waited for. Prints a markdown table with the ratio to the first backbone.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from codephys_jax import losses
from codephys_jax.models.physnet import PhysNetRegression
from configs import default as default_config


def _step_ms(model, clip, target, steps: int) -> tuple[float, int]:
  variables = model.init(jax.random.key(0), clip, train=False)
  params, stats = variables["params"], variables["batch_stats"]

  @jax.jit
  def step(params, stats):
    def loss_fn(p):
      out, updates = model.apply(
          {"params": p, "batch_stats": stats}, clip, train=True, mutable=["batch_stats"]
      )
      return losses.neg_pearson(out["rppg"], target), updates["batch_stats"]

    (_, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return jax.tree.map(lambda a, g: a - 1e-3 * g, params, grads), new_stats

  params, stats = jax.block_until_ready(step(params, stats))  # compile
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    params, stats = jax.block_until_ready(step(params, stats))
    times.append(time.perf_counter() - t0)
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))
  return 1000.0 * float(np.median(times)), count


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--size", type=int, default=16)
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--steps", type=int, default=10)
  args = parser.parse_args()
  demo = default_config.get_config()
  backbones = [
      ("cell_tcn", dict(demo.physnet.model.backbone_kwargs)),
      ("physnet", dict(base_width=8, output_channels=32, spatial_out=2)),
  ]
  rng = np.random.default_rng(0)
  clip = jnp.asarray(
      rng.normal(size=(args.batch, args.frames, args.size, args.size, 3)), jnp.float32
  )
  target = jnp.asarray(rng.normal(size=(args.batch, args.frames)), jnp.float32)
  print(f"| backbone | params | step (ms), B{args.batch} x {args.frames} x {args.size}^2 | ratio |")
  print("|---|---|---|---|")
  first = None
  for name, kwargs in backbones:
    model = PhysNetRegression(backbone=name, backbone_kwargs=kwargs)
    ms, count = _step_ms(model, clip, target, args.steps)
    first = first or ms
    print(f"| {name} | {count / 1e3:.1f}k | {ms:.1f} | {ms / first:.2f}x |", flush=True)


if __name__ == "__main__":
  main()
