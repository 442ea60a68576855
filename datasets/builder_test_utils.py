"""Checks shared by the rPPG builder tests (`datasets/*/*_dataset_builder_test.py`).

Every builder test prepares its dummy tree once, checks that one corrupted
raw item stops preparation with an error naming the item and the fault, and
leaves no file behind, and that a pulse marker placed at frame k of the raw
labels lands at frame k after preparation (`marker_landing`). Loaded as
`codephys_jax._builders.builder_test_utils` (never as `datasets.*`). Not a test module itself (no `test_` / `_test` name).
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
) -> tuple[int, int, dict]:
  """Where a pulse marker at source frame `frame` lands after preparation.

  Reads the item, puts a marker (a sample far above the rest) into its raw
  labels at the time of decoded frame `frame` (per-frame labels: sample
  `frame`; timestamped labels: the sample nearest that frame's time, moved onto
  it), prepares the example and returns (argmax of the prepared PPG, the output
  index of that source frame on the example's time grid, the example).
  """
  source, labels = read_item(item)
  with source:
    frame_times = [t for t, _ in source]
  t_k = frame_times[frame]
  ppg = np.array(labels.ppg, dtype=np.float64)
  if labels.per_frame:
    ppg[frame] = ppg.max() + 10 * np.ptp(ppg)
  else:
    times = np.array(labels.times, dtype=np.float64)
    nearest = int(np.argmin(np.abs(times - t_k)))
    times[nearest] = t_k
    ppg[nearest] = ppg.max() + 10 * np.ptp(ppg)
    labels = dataclasses.replace(labels, times=times)
  labels = dataclasses.replace(labels, ppg=ppg)
  source, _ = read_item(item)
  with source:
    ex = rppg_builder.build_example(item.key, item.subject_id, source, labels,
                                    preprocess_lib.PreprocessConfig(size=size))
  expected = int(round((t_k - ex["timestamps"][0]) * float(ex["fps"])))
  return int(np.argmax(ex["ppg"])), expected, ex
