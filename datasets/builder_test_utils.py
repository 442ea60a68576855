"""Checks shared by the rPPG builder tests (`datasets/*/*_dataset_builder_test.py`).

Every builder test prepares its dummy tree once and checks that one corrupted
raw item stops preparation with an error naming the item and the fault, and
leaves no file behind. Not a test module itself (no `test_` / `_test` name).
"""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import Callable

import pytest
import tensorflow_datasets as tfds

from codephys_jax import data as data_lib
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
