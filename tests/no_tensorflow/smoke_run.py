"""The smoke path run by tests/test_without_tensorflow.py in a process without TensorFlow.

  PYTHONPATH=tests/no_tensorflow:. python tests/no_tensorflow/smoke_run.py DATA WORK OUT.json

Prepares the tiny synthetic dataset with TFDS's shuffler forced to spill every
example to disk (the path that needed tf.io.gfile past 1 GB per split), trains
every stage of `configs/common.tiny`, evaluates them (the comparison table),
reads every TensorBoard event file back with TensorBoard's own loader, and
writes what it saw to OUT.json. The run is `helpers.tiny_config`, the one that
tests/test_train_lib.py asserts on: the `tiny_run` fixture (tests/conftest.py)
runs this script once and both test files read its workdir.
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import helpers  # noqa: E402


def _plain(x):
  """JSON for the numpy scalars of a training summary."""
  return x.item() if hasattr(x, "item") else str(x)


def main(data_dir: str, workdir: str, out_path: str) -> None:
  from tensorflow_datasets.core import shuffle

  from codephys_jax import tfds_spill
  from codephys_jax import train_lib

  # Every example goes through the on-disk buckets, not only splits past 1 GB.
  shuffle.MAX_MEM_BUFFER_SIZE = 0
  spilled = []
  add = tfds_spill.SpillBucket.add

  def counting_add(self, key, data):
    spilled.append(len(data))
    add(self, key, data)

  tfds_spill.SpillBucket.add = counting_add

  config = helpers.tiny_config(data_dir)
  summary = train_lib.train_and_evaluate(config, workdir)

  events = {
      os.path.relpath(path, workdir): helpers.read_events(path)
      for path in sorted(glob.glob(os.path.join(workdir, "*", "events.out.tfevents.*")))
  }
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
            "summary": summary,
            "tensorflow_modules": loaded,
        },
        f,
        default=_plain,
    )


if __name__ == "__main__":
  main(*sys.argv[1:4])
