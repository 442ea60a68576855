"""The smoke path run by tests/test_without_tensorflow.py in a process without TensorFlow.

  PYTHONPATH=tests/no_tensorflow:. python tests/no_tensorflow/smoke_run.py DATA WORK OUT.json

Prepares the tiny synthetic dataset with TFDS's shuffler forced to spill every
example to disk (the path that needed tf.io.gfile past 1 GB per split), trains
every stage of `configs/common.tiny`, evaluates them (the comparison table),
reads every TensorBoard event file back with TensorBoard's own loader, and
writes what it saw to OUT.json.
"""

import glob
import json
import os
import sys


def main(data_dir: str, workdir: str, out_path: str) -> None:
  from tensorboard.backend.event_processing import event_file_loader
  from tensorflow_datasets.core import shuffle

  from codephys_jax import tfds_spill
  from codephys_jax import train_lib
  from configs import common
  from configs import default as default_config

  # Every example goes through the on-disk buckets, not only splits past 1 GB.
  shuffle.MAX_MEM_BUFFER_SIZE = 0
  spilled = []
  add = tfds_spill.SpillBucket.add

  def counting_add(self, key, data):
    spilled.append(len(data))
    add(self, key, data)

  tfds_spill.SpillBucket.add = counting_add

  config = common.tiny(default_config.get_config())
  config.data_dir = data_dir
  config.dataset_options = dict(
      num_train=2, num_test=1, duration_s=4.0, width=160, height=120, degraded_types=("jpeg",)
  )
  summary = train_lib.train_and_evaluate(config, workdir)

  events = {}
  for path in sorted(glob.glob(os.path.join(workdir, "*", "events.out.tfevents.*"))):
    scalars = {}
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:
        number = (
            value.simple_value
            if value.WhichOneof("value") == "simple_value"
            else float(value.tensor.float_val[0])
        )
        scalars.setdefault(value.tag, []).append([int(event.step), number])
    events[os.path.relpath(path, workdir)] = scalars
  with open(os.path.join(workdir, "results.json")) as f:
    table = json.load(f)["table"]
  loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
  with open(out_path, "w") as f:
    json.dump(
        {
            "spilled_records": len(spilled),
            "events": events,
            "table": table,
            "stages": sorted(summary),
            "tensorflow_modules": loaded,
        },
        f,
    )


if __name__ == "__main__":
  main(*sys.argv[1:4])
