"""Preparing an rPPG builder: per-item work, the cross-split example cache,
skipped items, provenance, and clean-up after a failed preparation.

Preparation is keyed by the preprocessing settings, by the manual_dir it read
and by the skip option (`rppg_builder.config_name`), so data prepared from
another tree, with other settings or with bad items skipped is never reused
silently: they land in different TFDS config directories. `prepare` records
which tree and settings made a prepared dataset in `provenance.json`.

Processes that prepare into one data_dir at once (several trainings started
together) take turns: `prepare` holds an exclusive lock per dataset name
(`.<name>.prepare.lock` in the data_dir) while it prepares, and a process that
waited reads what the other prepared instead of preparing it again.

A bad raw item stops preparation with an `alignment.PreparationError` naming
it, unless the config was made with `options={"skip_bad_items": True}`: then
each bad item is logged with its reason, left out, and recorded in the prepared
dataset's metadata (`builder.info.metadata["skipped"]`, also `skipped.json`
next to `provenance.json`; read either with `skipped_items(builder)`).

`rppg_builder.RppgBuilder` runs `ExampleFn` on its items (in a process pool)
and keeps examples listed in several splits in an `ExampleCache`. This module
does not import `rppg_builder`; builders are typed as TFDS builders here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import jsonio
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import tfds_spill
from codephys_jax import video as video_lib

# An `rppg_builder.RppgBuilder`.
BuilderT = TypeVar("BuilderT", bound=tfds.core.DatasetBuilder)


def manual_dir_id(manual_dir: str | os.PathLike[str]) -> str:
  """Identity of a raw tree: its resolved absolute path."""
  return os.path.realpath(os.fspath(manual_dir))



@dataclasses.dataclass(frozen=True)
class SkippedItem:
  """What a worker returns instead of raising when bad items are skipped."""

  reason: str


class ExampleCache:
  """Examples of items listed in several splits, kept on disk between splits.

  TFDS generates splits one after another, and protocols list the same video in
  several of them (UBFC: train/test and full; VIPL-HR: a test fold, four training
  folds and full). Each such video is preprocessed once; its example waits here
  (uncompressed .npz next to the dataset, never in memory) until its last split
  has taken it, then the file is deleted.
  """

  def __init__(self, directory: str, uses: Mapping[str, int]):
    self.directory = directory
    self._uses = {k: n for k, n in uses.items() if n > 1}
    os.makedirs(directory, exist_ok=True)

  def _path(self, key: str) -> str:
    return os.path.join(self.directory, hashlib.sha1(key.encode()).hexdigest() + ".npz")

  def has(self, key: str) -> bool:
    return os.path.exists(self._path(key))

  def store(self, key: str, result: dict[str, Any] | SkippedItem) -> None:
    if key not in self._uses:
      return
    if isinstance(result, SkippedItem):
      arrays = {"__skipped__": np.asarray(result.reason)}
    else:
      arrays = {k: np.asarray(v) for k, v in result.items()}
    tmp = self._path(key) + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, self._path(key))

  def load(self, key: str) -> dict[str, Any] | SkippedItem:
    with np.load(self._path(key), allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
    if "__skipped__" in arrays:
      return SkippedItem(reason=str(arrays["__skipped__"]))
    return {
        k: (str(v) if v.dtype.kind == "U" else v[()]) if v.ndim == 0 else v
        for k, v in arrays.items()
    }

  def release(self, key: str) -> None:
    if key not in self._uses:
      return
    self._uses[key] -= 1
    if self._uses[key] <= 0 and self.has(key):
      os.remove(self._path(key))


@dataclasses.dataclass(frozen=True)
class ExampleFn:
  """Picklable per-item work for the process pool."""

  # `RppgBuilder.read_item`: rppg_builder.Item -> (frames, labels).
  read_item: Callable[[Any], tuple[video_lib.FrameSource, alignment.RawLabels]]
  preprocess: preprocess_lib.PreprocessConfig
  skip_bad_items: bool = False

  def __call__(self, item: Any) -> dict[str, Any] | SkippedItem:
    try:
      return self._example(item)
    except alignment.PreparationError as e:
      if not self.skip_bad_items:
        raise
      return SkippedItem(reason=str(e))

  def _example(self, item: Any) -> dict[str, Any]:
    try:
      source, labels = self.read_item(item)
    except alignment.PreparationError:
      raise
    except (OSError, ValueError, KeyError) as e:
      raise alignment.PreparationError(f"{item.key}: {e}") from e
    with source:
      return alignment.build_example(item.key, item.subject_id, source, labels, self.preprocess)


def prepare(
    builder: BuilderT,
    *,
    manual_dir: str | None = None,
) -> BuilderT:
  """Prepare (if needed) an rPPG builder into its data_dir as array_record.

  On any failure, everything this call created under the dataset's directory is
  removed again, so a failed preparation leaves nothing half-written.
  """
  if builder.is_prepared():
    return _read_info(builder)
  data_dir_root = os.fspath(builder.data_dir_root)
  os.makedirs(data_dir_root, exist_ok=True)
  # One lock per dataset name: a failed preparation removes what it created
  # under the dataset's directory, which must not be another process's work.
  with _exclusive(os.path.join(data_dir_root, f".{builder.name}.prepare.lock")):
    if builder.is_prepared():  # another process prepared it while this one waited
      return _read_info(builder)
    root = os.path.join(data_dir_root, builder.name)
    before = _tree(root)
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    try:
      # TF-free at any size: TFDS would spill splits past 1 GB through tf.io.gfile.
      with tfds_spill.spill_without_tensorflow():
        builder.download_and_prepare(download_config=download_config, file_format="array_record")
      _write_provenance(builder, manual_dir)
      jsonio.write_json(
          os.path.join(os.fspath(builder.data_path), SKIPPED_FILE),
          metadata_get(builder.info.metadata, "skipped"),
          sort_keys=True,
      )
    except BaseException:
      _remove_new(root, before)
      raise
  cache = getattr(builder, "_example_cache", None)
  if cache is not None:
    shutil.rmtree(cache.directory, ignore_errors=True)
  return builder


@contextlib.contextmanager
def _exclusive(path: str):
  """An exclusive advisory lock (flock) on `path`, across processes; waits for it."""
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _read_info(builder: BuilderT) -> BuilderT:
  """`builder` with the prepared dataset's info (splits, metadata) read from disk.

  A builder made before another process prepared its dataset holds the code's
  info, without splits, until this reads it.
  """
  if not builder.info.splits:
    builder.info.read_from_directory(builder.data_path)
  return builder


def _tree(root: str) -> set[str]:
  paths = set()
  for dirpath, dirnames, filenames in os.walk(root):
    paths.add(dirpath)
    paths.update(os.path.join(dirpath, n) for n in dirnames + filenames)
  return paths


def _remove_new(root: str, before: set[str]) -> None:
  # Deepest first, so directories are empty by the time they are removed.
  for path in sorted(_tree(root) - before, key=len, reverse=True):
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
      os.remove(path)


SKIPPED_FILE = "skipped.json"


def skipped_items(builder: tfds.core.DatasetBuilder) -> dict[str, str]:
  """{item key: reason} of the items a prepared dataset skipped (empty if none)."""
  if not builder.is_prepared():
    raise ValueError(f"{builder.name}: not prepared at {builder.data_path}")
  path = os.path.join(os.fspath(builder.data_path), SKIPPED_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      return json.load(f)
  # Prepared by TFDS directly (not through `prepare`): the dataset info has it.
  return metadata_get(builder.info.metadata, "skipped")


def metadata_get(metadata: Mapping[str, Any], key: str) -> dict[str, Any]:
  # Item access, not .get(): TFDS's lazy metadata loads metadata.json only then.
  try:
    return dict(metadata[key] or {})
  except KeyError:
    return {}


def _write_provenance(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
  cfg = builder.builder_config  # an `rppg_builder.RppgConfig`
  jsonio.write_json(
      os.path.join(os.fspath(builder.data_path), "provenance.json"),
      {
          "dataset": builder.name,
          "config": cfg.name,
          "manual_dir": manual_dir_id(manual_dir) if manual_dir else None,
          "preprocess": dataclasses.asdict(cfg.preprocess),
          "skip_bad_items": cfg.skip_bad_items,
          "item_counts": metadata_get(builder.info.metadata, "item_counts"),
      },
      sort_keys=True,
  )
