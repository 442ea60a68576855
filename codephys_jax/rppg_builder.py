"""Shared machinery of the rPPG TFDS builders (one builder folder per dataset in `datasets/`).

Every rPPG builder stores one example per video: face-cropped uint8 frames at a
common frame rate, the skin-mean RGB trace (for the unsupervised methods), the
ground-truth PPG resampled onto the frame times, and ids. A dataset-specific
subclass only lists the raw items of its `manual_dir` and says how to read one
item's frames and labels; the face pipeline, resampling, validation, parallel
preparation and the item-count check live here so that every dataset behaves the
same way.

Preparation is keyed by the preprocessing settings, by the manual_dir it read
and by the skip option, so data prepared from another tree, with other settings
or with bad items skipped is never reused silently: they land in different TFDS
config directories.

A bad raw item stops preparation with a `PreparationError` naming it, unless the
config was made with `options={"skip_bad_items": True}`: then each bad item is
logged with its reason, left out, and recorded in the prepared dataset's
metadata (`builder.info.metadata["skipped"]`, also `skipped.json` next to
`provenance.json`; read either with `skipped_items(builder)`).

Alignment of labels to frames uses the one clock they share (`RawLabels`):

* Per-frame labels (UBFC-rPPG, synthetic): sample i belongs to decoded frame i
  and takes that frame's timestamp; a logged label clock is never used as a
  second time axis against the decoder's. A decoded-frame count that differs
  from the sample count by at most `trim_bound(n)` (2 frames or 0.5 %) is
  trimmed to the common length (at the end: sample i stays with frame i).
* Separately sampled labels (PURE, VIPL-HR, COHFACE) keep their timestamps on
  the frames' clock. Repeated or backward label (or VIPL frame) timestamps are
  repaired by `repair_timestamps` (keep the first of a repeat, drop what steps
  back); decoded frames outside the labels' time span at either end are
  trimmed within the same bound.

Every trim and repair is logged, stored in the example (`trimmed_frames`,
`trimmed_labels`, `repaired_timestamps`), listed per item in
`builder.info.metadata["alignment"]` and counted (items) in `item_counts` and
`split_counts` (`trimmed`, `repaired`). Beyond the bound, or a clock that cannot
be repaired, is a `PreparationError` naming the item.
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import hr as hr_lib
from codephys_jax import jsonio
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import signal as sig
from codephys_jax import tfds_spill
from codephys_jax import video as video_lib


class PreparationError(ValueError):
  """A raw item could not be turned into an example; the message names the item."""


@dataclasses.dataclass(frozen=True)
class Item:
  """One raw video of a dataset: its key, ids and whatever the reader needs."""

  key: str  # Deterministic example key, e.g. "subject12" or "p1/v2/source1".
  subject_id: str
  payload: Mapping[str, Any]  # Paths and dataset-specific fields (picklable).


@dataclasses.dataclass(frozen=True)
class RawLabels:
  """Ground-truth PPG of one raw item and the clock that puts it on the frames.

  Two kinds (see "Alignment" in the module docstring):

  * ``per_frame=True`` (UBFC-rPPG, synthetic): sample i belongs to decoded
    frame i. The labels ride on the frames' own timestamps; ``times`` is kept
    for reference only (e.g. UBFC's logging clock) and is never used to align.
  * ``per_frame=False`` (PURE, VIPL-HR, COHFACE): separately sampled labels
    with their own timestamps in seconds on the frames' clock; repeated or
    backward timestamps are repaired by `repair_timestamps`.
  """

  times: np.ndarray | None
  ppg: np.ndarray
  per_frame: bool = False


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


def manual_dir_id(manual_dir: str | os.PathLike[str]) -> str:
  """Identity of a raw tree: its resolved absolute path."""
  return os.path.realpath(os.fspath(manual_dir))


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
          # Alignment accounting (see `build_example`): decoded frames and per-frame
          # label samples trimmed, label/frame timestamps dropped by the repair rule.
          **{name: tfds.features.Scalar(dtype=np.int32) for name in ALIGNMENT_FIELDS},
      }
  )


def reference_hr(ppg: np.ndarray, fps: float) -> float:
  """Whole-video reference HR (standard convention) stored with each example."""
  filtered = sig.postprocess(ppg, fps)
  return float(hr_lib.estimate_hr(filtered, fps, method="fft"))


# Frame/label count slack accepted (and trimmed) per item: this many frames,
# or this fraction of the longer of the two, whichever is larger. Real copies
# differ by one decoded frame (UBFC re-encodes); more is a truncated or foreign file.
MAX_TRIM_FRAMES = 2
MAX_TRIM_FRACTION = 0.005
# Timestamps dropped by `repair_timestamps` beyond this fraction of the samples
# mean a broken clock, not logging jitter: the item is an error.
MAX_REPAIR_FRACTION = 0.05
# Example fields that account for alignment (int32 scalars, see `features`).
ALIGNMENT_FIELDS = ("trimmed_frames", "trimmed_labels", "repaired_timestamps")


def trim_bound(length: int) -> int:
  """Largest frame/label count difference trimmed (not an error) for `length` samples."""
  return max(MAX_TRIM_FRAMES, int(MAX_TRIM_FRACTION * length))


def repair_timestamps(what: str, times: np.ndarray) -> tuple[np.ndarray, int]:
  """Make a logged clock strictly increasing by dropping samples; (keep mask, dropped).

  The rule: walk the samples in file order and keep a sample only if its time
  is later than every sample kept before it. An exact repeat keeps its first
  sample; a step backwards drops the samples until the clock passes the last
  kept time again. The values of kept samples are untouched (nothing is
  interpolated or re-timed).

  Raises:
    PreparationError (naming `what`): non-finite times, fewer than 2 samples
      left, or more than `MAX_REPAIR_FRACTION` of them dropped (a broken clock).
  """
  t = np.asarray(times, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(t)):
    raise PreparationError(f"{what}: {int(np.sum(~np.isfinite(t)))} non-finite timestamps")
  keep = np.ones(t.shape, dtype=bool)
  if t.size > 1:
    running = np.maximum.accumulate(t)
    keep[1:] = t[1:] > running[:-1]
  dropped = int(t.size - keep.sum())
  if keep.sum() < 2 or dropped > MAX_REPAIR_FRACTION * t.size:
    raise PreparationError(
        f"{what}: timestamps cannot be repaired: {dropped} of {t.size} samples repeat or "
        f"go backwards (at most {MAX_REPAIR_FRACTION:.0%} are dropped)"
    )
  return keep, dropped


def validate_labels(item_key: str, labels: RawLabels) -> tuple[RawLabels, int]:
  """Check the PPG and repair separately sampled label clocks; (labels, repaired count).

  Per-frame labels need no clock (their `times` are not checked). Otherwise
  repeated or backward timestamps are dropped by `repair_timestamps`.

  Raises:
    PreparationError naming the item when the labels are unusable.
  """
  ppg = np.asarray(labels.ppg, dtype=np.float64)
  if ppg.ndim != 1 or ppg.size < 2:
    raise PreparationError(f"{item_key}: PPG label has {ppg.size} samples; need >= 2")
  if not np.all(np.isfinite(ppg)):
    raise PreparationError(
        f"{item_key}: PPG label contains {int(np.sum(~np.isfinite(ppg)))} NaN/inf values"
    )
  if np.ptp(ppg) == 0:
    raise PreparationError(f"{item_key}: PPG label is constant")
  if labels.per_frame:
    return labels, 0
  times = np.asarray(labels.times, dtype=np.float64)
  if times.shape != ppg.shape:
    raise PreparationError(f"{item_key}: {ppg.size} PPG samples but {times.size} label timestamps")
  keep, dropped = repair_timestamps(f"{item_key}: label", times)
  if dropped:
    logging.info(
        "%s: repaired the label clock: dropped %d of %d samples with repeated or "
        "backward timestamps",
        item_key,
        dropped,
        times.size,
    )
  return RawLabels(times=times[keep], ppg=ppg[keep], per_frame=False), dropped


def _source_counts(source: video_lib.FrameSource) -> dict[str, int]:
  # Sources that re-time frames (VIPL-HR's time.txt) report what they dropped.
  counts = getattr(source, "alignment_counts", None) or {}
  return {k: int(counts.get(k, 0)) for k in ("trimmed_frames", "repaired_timestamps")}


def build_example(
    item_key: str,
    subject_id: str,
    source: video_lib.FrameSource,
    labels: RawLabels,
    cfg: preprocess_lib.PreprocessConfig,
) -> dict[str, Any]:
  """Face pipeline + label alignment for one video, with errors naming the item.

  Alignment (see the module docstring): per-frame labels take the decoded
  frames' own timestamps (sample i at frame i's time); separately sampled
  labels keep their (repaired) timestamps. Decoded frames without a label at
  either end are trimmed within `trim_bound`, per-frame labels without a frame
  likewise; the counts are stored in the example (`ALIGNMENT_FIELDS`).
  """
  labels, repaired = validate_labels(item_key, labels)
  try:
    video = preprocess_lib.preprocess_video(source, cfg)
  except video_lib.VideoError as e:
    raise PreparationError(f"{item_key}: {e}") from e
  from_source = _source_counts(source)
  src_t = np.asarray(video.source_timestamps, dtype=np.float64)
  ppg_in = np.asarray(labels.ppg, dtype=np.float64)
  n_src = len(src_t)
  trimmed_labels = 0
  if labels.per_frame:
    n = min(n_src, len(ppg_in))
    if abs(n_src - len(ppg_in)) > trim_bound(max(n_src, len(ppg_in))):
      raise PreparationError(
          f"{item_key}: {len(ppg_in)} PPG samples but the video has {n_src} frames "
          f"(one sample per frame; at most {trim_bound(max(n_src, len(ppg_in)))} "
          "are trimmed)"
      )
    label_t, label_v = src_t[:n], ppg_in[:n]
    first, last = 0, n - 1
    trimmed_labels = len(ppg_in) - n
  else:
    label_t, label_v = np.asarray(labels.times, dtype=np.float64), ppg_in
    # A frame counts as covered within one output period of the labels' span
    # (the edge label value is held there, see `preprocess.align_labels`).
    tol = 1.0 / video.fps
    covered = np.flatnonzero((src_t >= label_t[0] - tol) & (src_t <= label_t[-1] + tol))
    uncovered = n_src - covered.size
    if covered.size < 2 or uncovered > trim_bound(n_src):
      raise PreparationError(
          f"{item_key}: labels span {label_t[0]:.3f}..{label_t[-1]:.3f} s but "
          f"{uncovered} of the {n_src} frames ({src_t[0]:.3f}..{src_t[-1]:.3f} s) lie "
          f"outside it (at most {trim_bound(n_src)} are trimmed)"
      )
    first, last = int(covered[0]), int(covered[-1])
  trimmed_frames = n_src - (last - first + 1)
  # Output frames that stand for trimmed source frames go too.
  eps = preprocess_lib.time_tolerance(video.fps)
  keep = (video.timestamps >= src_t[first] - eps) & (video.timestamps <= src_t[last] + eps)
  if int(keep.sum()) < 2:
    raise PreparationError(f"{item_key}: only {int(keep.sum())} frames after preprocessing")
  try:
    ppg = preprocess_lib.align_labels(label_t, label_v, video.timestamps[keep])
  except ValueError as e:
    raise PreparationError(f"{item_key}: {e}") from e
  ppg = ppg.astype(np.float32)
  counts = {
      "trimmed_frames": trimmed_frames + from_source["trimmed_frames"],
      "trimmed_labels": trimmed_labels,
      "repaired_timestamps": repaired + from_source["repaired_timestamps"],
  }
  if any(counts.values()):
    logging.warning("%s: aligned with %s", item_key, counts)
  return {
      "video_id": item_key,
      "subject_id": subject_id,
      "frames": video.frames[keep],
      "rgb": video.rgb[keep].astype(np.float32),
      "valid": video.valid[keep].astype(np.uint8),
      "ppg": ppg,
      "timestamps": video.timestamps[keep].astype(np.float64),
      "fps": np.float32(video.fps),
      "hr": np.float32(reference_hr(ppg, video.fps)),
      **{k: np.int32(v) for k, v in counts.items()},
  }


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
    module docstring); anything else is rejected.
    """
    rest, skip = pop_base_options(options)
    if rest:
      raise ValueError(
          f"{cls.__name__} takes only the dataset options {list(BASE_OPTIONS)}, "
          f"got {sorted(rest)}"
      )
    preprocess = preprocess or preprocess_lib.PreprocessConfig(size=cls.DEFAULT_SIZE)
    source_id = manual_dir_id(manual_dir) if manual_dir else ""
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
  def read_item(item: Item) -> tuple[video_lib.FrameSource, RawLabels]:
    """Open the item's frames (streaming) and parse its labels. Runs in workers."""

  def expected_exclusions(self, items: Sequence[Item]) -> int:
    """How many found items the protocol leaves out of `full` (0 by default)."""
    del items
    return 0

  # --- TFDS plumbing ---------------------------------------------------------

  def _manual_dir(self, dl_manager) -> str:
    manual_dir = os.fspath(dl_manager.manual_dir)
    if not os.path.isdir(manual_dir):
      raise PreparationError(
          f"{self.name}: manual_dir {manual_dir!r} does not exist. "
          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    cfg: RppgConfig = self.builder_config
    if cfg.source_id and cfg.source_id != manual_dir_id(manual_dir):
      raise PreparationError(
          f"{self.name}: config {cfg.name} was made for {cfg.source_id}, "
          f"not for manual_dir {manual_dir_id(manual_dir)}"
      )
    return manual_dir

  def _split_generators(self, dl_manager):
    manual_dir = self._manual_dir(dl_manager) if self.NEEDS_MANUAL_DIR else None
    items = self.list_items(manual_dir)
    if not items:
      raise PreparationError(
          f"{self.name}: no items found under {manual_dir}. " f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    by_key = {it.key: it for it in items}
    if len(by_key) != len(items):
      raise PreparationError(f"{self.name}: duplicate item keys under {manual_dir}")
    # A partial tree (e.g. only test subjects) simply has fewer splits.
    splits = {k: v for k, v in self.split_keys(items, manual_dir).items() if v}
    excluded = self.expected_exclusions(items)
    expected_full = len(items) - excluded
    if "full" in splits and len(splits["full"]) != expected_full:
      raise PreparationError(
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
      # everything else it created (see `prepare`).
      self._example_cache = _ExampleCache(
          os.path.join(
              os.fspath(self.data_dir_root), self.name, f".prep-cache-{self.builder_config.name}"
          ),
          uses,
      )
    out = {}
    for split, keys in splits.items():
      missing = [k for k in keys if k not in by_key]
      if missing:
        raise PreparationError(f"{self.name}: split {split!r} names missing items {missing}")
      out[split] = self._generate_examples([by_key[k] for k in keys], split=split)
    return out

  def _generate_examples(
      self, items: Sequence[Item], *, split: str = ""
  ) -> Iterator[tuple[str, dict]]:
    cfg: RppgConfig = self.builder_config
    fn = _ExampleFn(type(self).read_item, cfg.preprocess, skip_bad_items=cfg.skip_bad_items)
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
      if isinstance(result, SkippedItem):
        logging.warning("%s: skipping %s (%s)", self.name, item.key, result.reason)
        skipped_here[item.key] = result.reason
        continue
      written += 1
      fixes = {k: int(result.get(k, 0)) for k in ALIGNMENT_FIELDS}
      if any(fixes.values()):
        aligned_here[item.key] = fixes
      yield item.key, result
    metadata = self.info.metadata
    metadata["skipped"] = {**_metadata_get(metadata, "skipped"), **skipped_here}
    # Items whose frames/labels were trimmed or whose clock was repaired.
    metadata["alignment"] = {**_metadata_get(metadata, "alignment"), **aligned_here}
    if items and not written:
      raise PreparationError(
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
          alignment_counts(aligned_here),
      )
      metadata["item_counts"] = {
          **counts,
          "skipped": len(skipped_here),
          "written": written,
          **alignment_counts(aligned_here),
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
        **_metadata_get(metadata, "split_counts"),
        split: {
            "listed": len(items),
            "skipped": len(skipped_here),
            "written": written,
            **alignment_counts(aligned_here),
        },
    }


def alignment_counts(aligned: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
  """Item counts of the alignment fixes: {"trimmed": items, "repaired": items}."""
  return {
      "trimmed": sum(bool(c["trimmed_frames"] or c["trimmed_labels"]) for c in aligned.values()),
      "repaired": sum(bool(c["repaired_timestamps"]) for c in aligned.values()),
  }


@dataclasses.dataclass(frozen=True)
class SkippedItem:
  """What a worker returns instead of raising when bad items are skipped."""

  reason: str


class _ExampleCache:
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
class _ExampleFn:
  """Picklable per-item work for the process pool."""

  read_item: Callable[[Item], tuple[video_lib.FrameSource, RawLabels]]
  preprocess: preprocess_lib.PreprocessConfig
  skip_bad_items: bool = False

  def __call__(self, item: Item) -> dict[str, Any] | SkippedItem:
    try:
      return self._example(item)
    except PreparationError as e:
      if not self.skip_bad_items:
        raise
      return SkippedItem(reason=str(e))

  def _example(self, item: Item) -> dict[str, Any]:
    try:
      source, labels = self.read_item(item)
    except PreparationError:
      raise
    except (OSError, ValueError, KeyError) as e:
      raise PreparationError(f"{item.key}: {e}") from e
    with source:
      return build_example(item.key, item.subject_id, source, labels, self.preprocess)


def prepare(
    builder: RppgBuilder,
    *,
    manual_dir: str | None = None,
) -> RppgBuilder:
  """Prepare (if needed) an rPPG builder into its data_dir as array_record.

  On any failure, everything this call created under the dataset's directory is
  removed again, so a failed preparation leaves nothing half-written.
  """
  if builder.is_prepared():
    return builder
  root = os.path.join(os.fspath(builder.data_dir_root), builder.name)
  before = _tree(root)
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  try:
    # TF-free at any size: TFDS would spill splits past 1 GB through tf.io.gfile.
    with tfds_spill.spill_without_tensorflow():
      builder.download_and_prepare(download_config=download_config, file_format="array_record")
    _write_provenance(builder, manual_dir)
    jsonio.write_json(
        os.path.join(os.fspath(builder.data_path), SKIPPED_FILE),
        _metadata_get(builder.info.metadata, "skipped"),
        sort_keys=True,
    )
  except BaseException:
    _remove_new(root, before)
    raise
  cache = getattr(builder, "_example_cache", None)
  if cache is not None:
    shutil.rmtree(cache.directory, ignore_errors=True)
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


def skipped_items(builder: RppgBuilder) -> dict[str, str]:
  """{item key: reason} of the items a prepared dataset skipped (empty if none)."""
  if not builder.is_prepared():
    raise ValueError(f"{builder.name}: not prepared at {builder.data_path}")
  path = os.path.join(os.fspath(builder.data_path), SKIPPED_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      return json.load(f)
  # Prepared by TFDS directly (not through `prepare`): the dataset info has it.
  return _metadata_get(builder.info.metadata, "skipped")


def _metadata_get(metadata: Mapping[str, Any], key: str) -> dict[str, Any]:
  # Item access, not .get(): TFDS's lazy metadata loads metadata.json only then.
  try:
    return dict(metadata[key] or {})
  except KeyError:
    return {}


def _write_provenance(builder: RppgBuilder, manual_dir: str | None) -> None:
  cfg: RppgConfig = builder.builder_config
  jsonio.write_json(
      os.path.join(os.fspath(builder.data_path), "provenance.json"),
      {
          "dataset": builder.name,
          "config": cfg.name,
          "manual_dir": manual_dir_id(manual_dir) if manual_dir else None,
          "preprocess": dataclasses.asdict(cfg.preprocess),
          "skip_bad_items": cfg.skip_bad_items,
          "item_counts": _metadata_get(builder.info.metadata, "item_counts"),
      },
      sort_keys=True,
  )
