"""The TFDS base class of the rPPG builders (one builder folder per dataset in `datasets/`).

Every rPPG builder stores one example per video (`features`): face-cropped
uint8 frames at a common frame rate, the skin-mean RGB trace (for the
unsupervised methods), the ground-truth PPG resampled onto the frame times, and
ids. A dataset-specific subclass only lists the raw items of its `manual_dir`
and says how to read one item's frames and labels; the rest is shared, so that
every dataset behaves the same way:

* `alignment`: the face pipeline, label validation, clock repair and alignment
  to the frames (`alignment.build_example`; errors are
  `alignment.PreparationError` naming the item);
* `preparation`: per-item work, the cross-split example cache, skipped items
  and provenance (`preparation.prepare`, `preparation.skipped_items`);
* here: configs keyed by the preprocessing settings, the raw tree and the skip
  option (`config_name`), split generation (in parallel) and the item-count
  check, with the counts in `builder.info.metadata` (`item_counts`,
  `split_counts`, `skipped`, `alignment`).
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import multiprocessing
import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import preparation
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import video as video_lib


@dataclasses.dataclass(frozen=True)
class Item:
  """One raw video of a dataset: its key, ids and whatever the reader needs."""

  key: str  # Deterministic example key, e.g. "subject12" or "p1/v2/source1".
  subject_id: str
  payload: Mapping[str, Any]  # Paths and dataset-specific fields (picklable).


class RppgConfig(tfds.core.BuilderConfig):
  """A builder config = preprocessing settings (+ the identity of the raw tree)."""

  def __init__(
      self,
      *,
      preprocess: preprocess_lib.PreprocessConfig,
      source_id: str = "",
      skip_bad_items: bool = False,
      name: str | None = None,
      **kwargs: Any,
  ):
    self.preprocess = preprocess
    self.source_id = source_id
    self.skip_bad_items = bool(skip_bad_items)
    if name is None:
      name = config_name(preprocess, source_id, skip_bad_items=self.skip_bad_items)
    description = kwargs.pop(
        "description",
        f"Preprocessing {dataclasses.asdict(preprocess)}; source {source_id or '-'}"
        + ("; bad items skipped" if self.skip_bad_items else ""),
    )
    super().__init__(name=name, description=description, **kwargs)


def config_name(
    preprocess: preprocess_lib.PreprocessConfig,
    source_id: str,
    *,
    skip_bad_items: bool = False,
) -> str:
  """Stable directory-safe name: crop size + hash of every setting and the source."""
  identity = preprocess.fingerprint() + "|" + source_id
  # Appended only when set, so that strict preparations keep their names.
  if skip_bad_items:
    identity += "|skip_bad_items"
  digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
  return f"s{preprocess.size}_{digest}"


# Dataset options every rPPG builder accepts (through `make_config(options=...)`).
BASE_OPTIONS = ("skip_bad_items",)


def pop_base_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], bool]:
  """Split `options` into (dataset-specific options, skip_bad_items)."""
  rest = dict(options or {})
  skip = rest.pop("skip_bad_items", False)
  if not isinstance(skip, (bool, np.bool_)):
    raise ValueError(f"option skip_bad_items must be a bool, got {skip!r}")
  return rest, bool(skip)



def features(size: int) -> tfds.features.FeaturesDict:
  """The example spec shared by every rPPG builder."""
  bytes_enc = tfds.features.Encoding.BYTES
  return tfds.features.FeaturesDict(
      {
          "video_id": tfds.features.Text(),
          "subject_id": tfds.features.Text(),
          # uint8 crops stored as raw bytes: ~6x faster to read than int64 lists.
          "frames": tfds.features.Tensor(
              shape=(None, size, size, 3), dtype=np.uint8, encoding=bytes_enc
          ),
          "rgb": tfds.features.Tensor(shape=(None, 3), dtype=np.float32, encoding=bytes_enc),
          "valid": tfds.features.Tensor(shape=(None,), dtype=np.uint8, encoding=bytes_enc),
          "ppg": tfds.features.Tensor(shape=(None,), dtype=np.float32, encoding=bytes_enc),
          "timestamps": tfds.features.Tensor(shape=(None,), dtype=np.float64, encoding=bytes_enc),
          "fps": tfds.features.Scalar(dtype=np.float32),
          "hr": tfds.features.Scalar(dtype=np.float32),
          # Alignment accounting (see `alignment.build_example`): decoded frames and per-frame
          # label samples trimmed, label/frame timestamps dropped by the repair rule.
          **{name: tfds.features.Scalar(dtype=np.int32) for name in alignment.ALIGNMENT_FIELDS},
      }
  )



class RppgBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: subclasses implement `list_items`, `split_keys` and `read_item`."""

  # Overridden by subclasses.
  VERSION = tfds.core.Version("1.0.0")
  DEFAULT_SIZE = 72
  NEEDS_MANUAL_DIR = True
  MANUAL_DOWNLOAD_INSTRUCTIONS = ""
  # Parallel preparation: 0 = min(2, cpu count); 1 = in-process (no pool).
  # The CODEPHYS_PREP_WORKERS environment variable overrides it.
  num_workers: int = 0

  @classmethod
  def make_config(
      cls,
      *,
      preprocess: preprocess_lib.PreprocessConfig | None = None,
      manual_dir: str | os.PathLike[str] | None = None,
      options: Mapping[str, Any] | None = None,
  ) -> RppgConfig:
    """A config keyed by the preprocessing settings, the raw tree's path and the skip option.

    The only option of the manual-download datasets is `skip_bad_items` (see the
    `preparation` docstring); anything else is rejected.
    """
    rest, skip = pop_base_options(options)
    if rest:
      raise ValueError(
          f"{cls.__name__} takes only the dataset options {list(BASE_OPTIONS)}, "
          f"got {sorted(rest)}"
      )
    preprocess = preprocess or preprocess_lib.PreprocessConfig(size=cls.DEFAULT_SIZE)
    source_id = preparation.manual_dir_id(manual_dir) if manual_dir else ""
    return RppgConfig(
        preprocess=preprocess, source_id=source_id, skip_bad_items=skip, version=cls.VERSION
    )

  def _info(self) -> tfds.core.DatasetInfo:
    cfg: RppgConfig = self.builder_config
    return self.dataset_info_from_configs(
        features=features(cfg.preprocess.size),
        supervised_keys=None,
        homepage=getattr(self, "HOMEPAGE", None),
        # `skipped` / `item_counts` are filled in during generation and saved
        # with the dataset info (metadata.json) when preparation ends.
        metadata=tfds.core.MetadataDict(
            preprocess=dataclasses.asdict(cfg.preprocess),
            source_id=cfg.source_id,
            skip_bad_items=cfg.skip_bad_items,
            skipped={},
            item_counts={},
            split_counts={},
            alignment={},
        ),
    )

  # --- dataset-specific API -------------------------------------------------

  @abc.abstractmethod
  def list_items(self, manual_dir: str | None) -> list[Item]:
    """Every raw video found in the tree, sorted by key (never by glob order)."""

  @abc.abstractmethod
  def split_keys(
      self, items: Sequence[Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    """Protocol splits: split name -> item keys (explicit lists, not fs order).

    `manual_dir` is the tree `items` were listed from, for protocols defined by
    files in it (VIPL-HR fold files, COHFACE protocol lists).
    """

  @staticmethod
  @abc.abstractmethod
  def read_item(item: Item) -> tuple[video_lib.FrameSource, alignment.RawLabels]:
    """Open the item's frames (streaming) and parse its labels. Runs in workers."""

  def expected_exclusions(self, items: Sequence[Item]) -> int:
    """How many found items the protocol leaves out of `full` (0 by default)."""
    del items
    return 0

  # --- TFDS plumbing ---------------------------------------------------------

  def _manual_dir(self, dl_manager) -> str:
    manual_dir = os.fspath(dl_manager.manual_dir)
    if not os.path.isdir(manual_dir):
      raise alignment.PreparationError(
          f"{self.name}: manual_dir {manual_dir!r} does not exist. "
          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    cfg: RppgConfig = self.builder_config
    if cfg.source_id and cfg.source_id != preparation.manual_dir_id(manual_dir):
      raise alignment.PreparationError(
          f"{self.name}: config {cfg.name} was made for {cfg.source_id}, "
          f"not for manual_dir {preparation.manual_dir_id(manual_dir)}"
      )
    return manual_dir

  def _split_generators(self, dl_manager):
    manual_dir = self._manual_dir(dl_manager) if self.NEEDS_MANUAL_DIR else None
    items = self.list_items(manual_dir)
    if not items:
      raise alignment.PreparationError(
          f"{self.name}: no items found under {manual_dir}. " f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    by_key = {it.key: it for it in items}
    if len(by_key) != len(items):
      raise alignment.PreparationError(f"{self.name}: duplicate item keys under {manual_dir}")
    # A partial tree (e.g. only test subjects) simply has fewer splits.
    splits = {k: v for k, v in self.split_keys(items, manual_dir).items() if v}
    excluded = self.expected_exclusions(items)
    expected_full = len(items) - excluded
    if "full" in splits and len(splits["full"]) != expected_full:
      raise alignment.PreparationError(
          f"{self.name}: 'full' has {len(splits['full'])} items, expected "
          f"{len(items)} found - {excluded} excluded"
      )
    logging.info(
        "%s: %d items found, %s",
        self.name,
        len(items),
        {k: len(v) for k, v in splits.items()},
    )
    self._counts = {"found": len(items), "excluded": excluded}
    uses = collections.Counter(k for keys in splits.values() for k in keys)
    self._example_cache = None
    if any(n > 1 for n in uses.values()):
      # Under the dataset's own folder: a failed preparation removes it with
      # everything else it created (see `preparation.prepare`).
      self._example_cache = preparation.ExampleCache(
          os.path.join(
              os.fspath(self.data_dir_root), self.name, f".prep-cache-{self.builder_config.name}"
          ),
          uses,
      )
    out = {}
    for split, keys in splits.items():
      missing = [k for k in keys if k not in by_key]
      if missing:
        raise alignment.PreparationError(f"{self.name}: split {split!r} names missing items {missing}")
      out[split] = self._generate_examples([by_key[k] for k in keys], split=split)
    return out

  def _generate_examples(
      self, items: Sequence[Item], *, split: str = ""
  ) -> Iterator[tuple[str, dict]]:
    cfg: RppgConfig = self.builder_config
    fn = preparation.ExampleFn(type(self).read_item, cfg.preprocess, skip_bad_items=cfg.skip_bad_items)
    workers = (
        int(os.environ.get("CODEPHYS_PREP_WORKERS", "0"))
        or self.num_workers
        or min(2, os.cpu_count() or 1)
    )
    cache = getattr(self, "_example_cache", None)
    todo = [it for it in items if cache is None or not cache.has(it.key)]

    def merged(computed: Iterator[Any]) -> Iterator[tuple[Item, Any]]:
      # Items done for an earlier split come from the cache, the rest in order
      # from `computed`; shared ones are kept for the splits still to come.
      for item in items:
        if cache is not None and cache.has(item.key):
          result = cache.load(item.key)
        else:
          result = next(computed)
          if cache is not None:
            cache.store(item.key, result)
        yield item, result
        if cache is not None:
          cache.release(item.key)

    if workers <= 1 or len(todo) <= 1:
      yield from self._accounted(items, merged(fn(item) for item in todo), split)
      return
    # Videos are independent: process them in parallel, yield in a fixed order,
    # and let any worker error stop the whole preparation (nothing is dropped
    # unless skipping was asked for, and then every skip is recorded).
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
      yield from self._accounted(items, merged(iter(pool.map(fn, todo))), split)

  def _accounted(
      self, items: Sequence[Item], results: Iterator[tuple[Item, Any]], split: str
  ) -> Iterator[tuple[str, dict]]:
    """Yield the examples, record skipped items, then report and check the counts."""
    skipped_here: dict[str, str] = {}
    aligned_here: dict[str, dict[str, int]] = {}
    written = 0
    for item, result in results:
      if isinstance(result, preparation.SkippedItem):
        logging.warning("%s: skipping %s (%s)", self.name, item.key, result.reason)
        skipped_here[item.key] = result.reason
        continue
      written += 1
      fixes = {k: int(result.get(k, 0)) for k in alignment.ALIGNMENT_FIELDS}
      if any(fixes.values()):
        aligned_here[item.key] = fixes
      yield item.key, result
    metadata = self.info.metadata
    metadata["skipped"] = {**preparation.metadata_get(metadata, "skipped"), **skipped_here}
    # Items whose frames/labels were trimmed or whose clock was repaired.
    metadata["alignment"] = {**preparation.metadata_get(metadata, "alignment"), **aligned_here}
    if items and not written:
      raise alignment.PreparationError(
          f"{self.name}/{split}: every one of its {len(items)} items was skipped; "
          f"reasons: {skipped_here}"
      )
    counts = getattr(self, "_counts", {"found": len(items), "excluded": 0})
    if split == "full":
      logging.info(
          "%s/full: found %d, excluded %d, skipped %d, written %d (%s)",
          self.name,
          counts["found"],
          counts["excluded"],
          len(skipped_here),
          written,
          alignment.alignment_counts(aligned_here),
      )
      metadata["item_counts"] = {
          **counts,
          "skipped": len(skipped_here),
          "written": written,
          **alignment.alignment_counts(aligned_here),
      }
    else:
      logging.info(
          "%s/%s: listed %d, skipped %d, written %d",
          self.name,
          split,
          len(items),
          len(skipped_here),
          written,
      )
    metadata["split_counts"] = {
        **preparation.metadata_get(metadata, "split_counts"),
        split: {
            "listed": len(items),
            "skipped": len(skipped_here),
            "written": written,
            **alignment.alignment_counts(aligned_here),
        },
    }

