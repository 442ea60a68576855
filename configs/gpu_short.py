"""Short paper-size run for a GPU: Stage I, CodePhys and the PhysNet baseline at 128x128x160.

Command (what benchmarks/gpu_session.sh runs):

  python train.py --config=configs/gpu_short.py --workdir=OUT/train

The paper's model sizes, batch, optimiser and augmentations (configs/paper.py)
on the embedded synthetic dataset (16 training subjects, of which the checkpoint
is selected on held-out ones, and 4 test videos of 30 s, prepared on first use),
with clips cut and augmented on the device (input_pipeline='device'). 400 steps
per stage: long enough for curves and step-time numbers, not for the paper's
accuracy. Hardware: one GPU with >= 16 GB; on a CPU it runs but takes hours.
Expected result: not measured yet (no GPU was available when this config was
written).
"""

from configs import paper


def get_config():
  c = paper.paper_config(
      "synthetic_rppg",
      train_split="train",
      eval_split="val",
      compare_splits={"clean": "test"},
      num_steps=400,
      eval_every=200,
  )
  c.dataset_options = dict(num_train=16, num_test=4, duration_s=30.0)
  c.input_pipeline = "device"  # fits: 16 videos x 900 frames x 128 x 128 x 3 = 0.7 GB
  c.codebook.learning_rate = 1e-3  # Stage I converges in a few hundred steps only this way
  for stage in ("codebook", "codephys", "physnet"):
    c[stage].log_every = 20
  c.compare.unsupervised = ("pos",)
  return c
