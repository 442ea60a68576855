"""Checks shared by the rPPG builder tests (`datasets/*/*_dataset_builder_test.py`).

Every builder test prepares its dummy tree once, checks that one corrupted
raw item stops preparation with an error naming the item and the fault, and
leaves no file behind, and that a pulse marker placed at frame k of the raw
labels lands at frame k after preparation (`marker_landing`). `BuilderTestCase`
is the TF-free stand-in for `tfds.testing.DatasetBuilderTestCase` (which needs
TensorFlow). Loaded as `codephys_jax._builders.builder_test_utils` (never as
`datasets.*`). Not a test
module itself (no `test_` / `_test` name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import tempfile
import unittest
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import pytest
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import preparation
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
  with pytest.raises(alignment.PreparationError) as err:
    data_lib.load_builder(
        name, data_dir=str(data_dir), manual_dir=str(tree), preprocess={"size": 16}
    )
  assert key in str(err.value) and message in str(err.value)
  # Nothing but the (empty) lock file that preparations in one data_dir share.
  written = [os.path.join(r, f) for r, _, fs in os.walk(data_dir) for f in fs]
  assert written == [os.path.join(data_dir, f".{name}.prepare.lock")], written
  assert os.path.getsize(written[0]) == 0


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
    ex = alignment.build_example(
        item.key, item.subject_id, source, labels, preprocess_lib.PreprocessConfig(size=size)
    )
  position = (t_k - ex["timestamps"][0]) * float(ex["fps"])
  return int(np.argmax(ex["ppg"])), float(position), ex


class BuilderTestCase(unittest.TestCase):
  """Prepares `EXAMPLE_DIR` with each of the builder's configs and checks the result.

  What `tfds.testing.DatasetBuilderTestCase` checks, without TensorFlow (it is a
  `tf.test.TestCase` and reads through `tf.data`): each split of `SPLITS` has
  that many examples in the dataset info and in the array_record data source;
  every example has every feature with its declared rank, fixed dimensions and
  dtype; splits not in `OVERLAPPING_SPLITS` share no example; no example id
  carries the local path of the raw tree; and a builder made afresh on the same
  directory finds the dataset prepared with the same counts.
  """

  DATASET_CLASS: ClassVar[type[rppg_builder.RppgBuilder] | None] = None
  EXAMPLE_DIR: ClassVar[str] = ""
  SPLITS: ClassVar[Mapping[str, int]] = {}
  OVERLAPPING_SPLITS: ClassVar[Sequence[str]] = ()
  # tfds.testing settings the builder tests still spell; nothing here mocks the
  # OS or downloads, so they have no effect.
  MOCK_OUT_FORBIDDEN_OS_FUNCTIONS: ClassVar[bool] = False
  SKIP_CHECKSUMS: ClassVar[bool] = True

  def test_download_and_prepare_as_data_source(self):
    cls = self.DATASET_CLASS
    if cls is None:
      self.skipTest("base class")
    for config in cls.BUILDER_CONFIGS or [cls.make_config()]:
      with self.subTest(config=config.name), tempfile.TemporaryDirectory() as data_dir:
        builder = preparation.prepare(
            cls(config=config, data_dir=data_dir, file_format="array_record"),
            manual_dir=self.EXAMPLE_DIR,
        )
        self._check_prepared(builder)
        reloaded = cls(config=config, data_dir=data_dir, file_format="array_record")
        self.assertTrue(reloaded.is_prepared())
        self._check_prepared(reloaded)

  def _check_prepared(self, builder: rppg_builder.RppgBuilder) -> None:
    info = builder.info
    self.assertEqual(sorted(info.splits), sorted(self.SPLITS))
    self.assertEqual(info.splits.total_num_examples, sum(self.SPLITS.values()))
    digests = {}
    for split, expected in self.SPLITS.items():
      self.assertEqual(info.splits[split].num_examples, expected, split)
      source = builder.as_data_source(split)
      self.assertEqual(len(source), expected, split)
      digests[split] = set()
      for i in range(len(source)):
        example = source[i]
        self._check_example(builder, split, example)
        digests[split].add(_digest(example))
    for a in self.SPLITS:
      for b in self.SPLITS:
        if a < b and a not in self.OVERLAPPING_SPLITS and b not in self.OVERLAPPING_SPLITS:
          self.assertFalse(digests[a] & digests[b], f"splits {a!r} and {b!r} overlap")

  def _check_example(self, builder, split: str, example: Mapping[str, Any]) -> None:
    features = builder.info.features
    self.assertEqual(sorted(example), sorted(features.keys()), split)
    for name, feature in features.items():
      value = np.asarray(example[name])
      where = f"{split}/{name}"
      if feature.np_dtype == np.object_:  # Text
        self.assertIsInstance(example[name], (bytes, str), where)
        continue
      want_dtype = np.dtype(feature.np_dtype)
      if isinstance(example[name], (int, float)):  # scalars decode to Python numbers
        self.assertEqual(value.dtype.kind, want_dtype.kind, where)
      else:
        self.assertEqual(value.dtype, want_dtype, where)
      self.assertEqual(value.ndim, len(feature.shape), where)
      for got, want in zip(value.shape, feature.shape):
        if want is not None:
          self.assertEqual(got, want, where)
    video_id = example["video_id"]
    video_id = video_id.decode() if isinstance(video_id, bytes) else video_id
    self.assertNotIn(os.fspath(self.EXAMPLE_DIR), video_id)


def _digest(example: Mapping[str, Any]) -> str:
  h = hashlib.sha256()
  for name in sorted(example):
    value = example[name]
    h.update(name.encode())
    h.update(value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes())
  return h.hexdigest()
