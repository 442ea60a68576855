"""Worker for tests/test_distributed.py: a few data-parallel steps on a fixed global batch.

Run as one process (reference) or as several with CODEPHYS_* set; every process feeds
its own contiguous slice of the same global batch. Process 0 writes a JSON summary
(losses, parameter checksums, layout, checkpoint round-trip result) to argv[1].
Usage: python tests/distributed_worker.py OUT_JSON CHECKPOINT_DIR
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codephys_jax import distributed  # noqa: E402  (must run before JAX backends start)

LAUNCH = distributed.maybe_initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from codephys_jax import checkpointing, trainer  # noqa: E402
import tiny_net  # noqa: E402  (tests/, this script's folder)
from tiny_net import TinyNet  # noqa: E402

GLOBAL_BATCH, T, C, STEPS = 8, 8, 2, 3


MODEL = TinyNet(features=3, dropout=0.2)  # flax's BatchNorm momentum
loss_fn = tiny_net.mse_loss_fn(MODEL)


def global_batch(step):
  rs = np.random.RandomState(step)
  return {
      "x": rs.randn(GLOBAL_BATCH, T, C).astype(np.float32),
      "y": rs.randn(GLOBAL_BATCH).astype(np.float32),
  }


def local_batch(step):
  index, count = trainer.process_shard(GLOBAL_BATCH)
  n = GLOBAL_BATCH // count
  return jax.tree.map(lambda a: a[index * n : (index + 1) * n], global_batch(step))


def main(out_path, ckpt_dir):
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=tiny_net.init_fn(MODEL),
      tx=optax.adam(1e-2),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=local_batch(0),
  )
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh)
  losses = []
  for s in range(STEPS):
    state, metrics = step_fn(state, trainer.shard_batch(mesh, local_batch(s)))
    losses.append(float(trainer.fetch(metrics["loss"])))
  params = trainer.fetch(state.params)
  # Checkpoint round trip with every process taking part, as in a real run.
  ckpt = checkpointing.Checkpointer(ckpt_dir, meta={"n": jax.process_count()})
  ckpt.save(STEPS, state)
  ckpt.wait()
  restored = ckpt.restore_latest(trainer.abstract_state(state))
  ckpt.close()
  same = all(
      np.array_equal(a, b)
      for a, b in zip(jax.tree.leaves(trainer.fetch(restored.params)), jax.tree.leaves(params))
  )
  if jax.process_index() == 0:
    summary = {
        "mode": LAUNCH.mode,
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "losses": losses,
        "params": {
            jax.tree_util.keystr(k): np.asarray(v).ravel().tolist()
            for k, v in jax.tree_util.tree_leaves_with_path(params)
        },
        "restored_equal": bool(same),
    }
    with open(out_path, "w") as f:
      json.dump(summary, f)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
