"""Helpers shared by several test files and the subprocesses they start.

Importable as `helpers` from test modules (pytest puts tests/ on sys.path) and
from tests/no_tensorflow/smoke_run.py (which puts tests/ there itself), so it
imports nothing heavy at module level.
"""

import os

# The tiny synthetic dataset of the end-to-end runs: 2 training subjects, 1 test
# subject, and its JPEG-degraded copy.
TINY_DATASET_OPTIONS = dict(
    num_train=2, num_test=1, duration_s=4.0, width=160, height=120, degraded_types=("jpeg",)
)


def tiny_config(data_dir: str):
  """`configs/common.tiny` of the default recipe on the tiny synthetic dataset.

  Stage I runs 4 steps (checkpoints at 2 and 4), so that a run killed at step 3
  resumes from a checkpoint; the video stages run 2 steps.
  """
  from configs import common
  from configs import default as default_config

  c = common.tiny(default_config.get_config())
  c.data_dir = data_dir
  c.dataset_options = dict(TINY_DATASET_OPTIONS)
  c.codebook.num_steps = 4
  return c


def read_events(path: str) -> dict:
  """{tag: [(step, value)]} of one TensorBoard event file, or of every event file
  in a directory, read with TensorBoard's own loader."""
  from tensorboard.backend.event_processing import event_file_loader

  if os.path.isdir(path):
    files = [
        os.path.join(path, n)
        for n in sorted(os.listdir(path))
        if n.startswith("events.out.tfevents.")
    ]
  else:
    files = [path]
  out = {}
  for name in files:
    for event in event_file_loader.EventFileLoader(name).Load():
      for value in event.summary.value:
        number = (
            value.simple_value
            if value.WhichOneof("value") == "simple_value"
            else float(value.tensor.float_val[0])
        )
        out.setdefault(value.tag, []).append((int(event.step), number))
  return out
