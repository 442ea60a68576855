"""Checks shared by the rPPG builder tests (`datasets/*/*_dataset_builder_test.py`).

Every builder test prepares its dummy tree once, checks that one corrupted
raw item stops preparation with an error naming the item and the fault, and
leaves no file behind, and that a pulse marker placed at frame k of the raw
labels lands at frame k after preparation (`marker_landing`). Loaded as
`codephys_jax._builders.builder_test_utils` (never as `datasets.*`). Not a test
module itself (no `test_` / `_test` name).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from typing import Callable

import numpy as np
import pytest
import tensorflow_datasets as tfds

from codephys_jax import data as data_lib
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder


def prepare_dummy(name: str, data_dir: str, dummy_dir: str) -> tfds.core.DatasetBuilder:
  """Dataset `name` prepared from its dummy tree at 32x32 into `data_dir`."""
  return data_lib.load_builder(
      name, data_dir=data_dir, manual_dir=dummy_dir, preprocess={"size": 32}
  )


def assert_bad_item_fails(
    tmp_path: pathlib.Path,
    name: str,
    *,
    source: str,
    dest: str,
    corrupt: Callable[[pathlib.Path, str], None],
    how: str,
    key: str,
    message: str,
) -> None:
  """Copy `source` to `<tmp>/raw/<dest>`, apply `corrupt(tree, how)`, and check that
  preparing `name` from that tree raises a PreparationError naming `key` and
  containing `message`, and writes no file under the data dir.

  Only the item being broken is copied: keeps each failing preparation short.
  """
  tree = tmp_path / "raw"
  shutil.copytree(source, tree / dest)
  corrupt(tree, how)
  data_dir = tmp_path / "tfds"
  with pytest.raises(rppg_builder.PreparationError) as err:
    data_lib.load_builder(name, data_dir=str(data_dir), manual_dir=str(tree),
                          preprocess={"size": 16})
  assert key in str(err.value) and message in str(err.value)
  written = [os.path.join(r, f) for r, _, fs in os.walk(data_dir) for f in fs]
  assert written == [], written


def marker_landing(
    item: rppg_builder.Item,
    read_item: Callable[[rppg_builder.Item], tuple],
    *,
    frame: int,
    size: int = 16,
) -> tuple[int, float, dict]:
  """Where a pulse marker at source frame `frame` lands after preparation.

  Reads the item, adds a marker far above the PPG to its raw labels at the time
  of decoded frame `frame` (per-frame labels: on sample `frame`; timestamped
  labels: a triangle one output period wide on each side, centred on that
  frame's time, so that it shows at whichever output time is nearest), prepares
  the example and returns (argmax of the prepared PPG, the fractional output
  index of that source frame's time on the example's grid, the example). An
  aligned builder gives |argmax - index| <= 0.5.
  """
  source, labels = read_item(item)
  with source:
    frame_times = [t for t, _ in source]
  t_k = frame_times[frame]
  ppg = np.array(labels.ppg, dtype=np.float64)
  big = 100.0 * np.ptp(ppg)
  if labels.per_frame:
    ppg[frame] += big
  else:
    period = 1.0 / 30.0  # the output rate of every builder's default preprocessing
    times = np.asarray(labels.times, dtype=np.float64)
    ppg += big * np.clip(1.0 - np.abs(times - t_k) / period, 0.0, None)
  labels = dataclasses.replace(labels, ppg=ppg)
  source, _ = read_item(item)
  with source:
    ex = rppg_builder.build_example(item.key, item.subject_id, source, labels,
                                    preprocess_lib.PreprocessConfig(size=size))
  position = (t_k - ex["timestamps"][0]) * float(ex["fps"])
  return int(np.argmax(ex["ppg"])), float(position), ex
