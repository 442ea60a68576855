"""Datasets by name, preparation into TFDS array_record, and grain input pipelines.

`load_builder` returns a prepared builder whose config directory is keyed by the
preprocessing settings and the raw tree it read (see `rppg_builder`), so that a
dataset prepared from another manual_dir or with other settings is never reused.
Whole videos are read through `tfds` random-access data sources; training clips
are cut from them by a grain `MapDataset` that shuffles, shards per JAX process,
augments deterministically per (seed, index) and batches. Because every stage
is index-addressable, a pipeline resumed at step k yields exactly the batches an
uninterrupted run would have seen from step k on.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import re
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import grain
import numpy as np

from codephys_jax import preparation
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder

_MAX_ELEMENTS = 2**62  # "infinite" training stream

# name -> builder class in datasets/<name>/<name>_dataset_builder.py, loaded lazily
# (builders pull in OpenCV and TFDS) by file path under codephys_jax._builders:
# never as the top-level module `datasets` (Hugging Face's package has that name).
DATASETS: dict[str, str] = {
    "synthetic_rppg": "SyntheticRppg",
    "ubfc_rppg": "UbfcRppg",
    "pure": "Pure",
    "vipl_hr": "ViplHr",
    "cohface": "Cohface",
}


def builder_class(name: str) -> type[rppg_builder.RppgBuilder]:
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
  from codephys_jax import _builders  # pylint: disable=g-import-not-at-top

  return getattr(_builders.load(name), DATASETS[name])


def make_builder(
    name: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    preprocess: preprocess_lib.PreprocessConfig | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> rppg_builder.RppgBuilder:
  """An (unprepared) builder for `name` with the given settings."""
  cls = builder_class(name)
  if isinstance(preprocess, Mapping):
    preprocess = preprocess_lib.PreprocessConfig(**dict(preprocess))
  if cls.NEEDS_MANUAL_DIR and not manual_dir:
    raise ValueError(
        f"dataset {name!r} needs manual_dir (set --config.manual_dir). "
        f"{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
  config = cls.make_config(
      preprocess=preprocess, manual_dir=manual_dir, options=dict(options or {})
  )
  return cls(config=config, data_dir=data_dir, file_format="array_record")


def builder_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
  """`make_builder` / `load_builder` keyword arguments from a train/eval config
  (fields data_dir, manual_dir, preprocess, dataset_options; empty = default)."""
  return {
      "data_dir": config.get("data_dir") or None,
      "manual_dir": config.get("manual_dir") or None,
      "preprocess": dict(config["preprocess"]),
      "options": dict(config.get("dataset_options") or {}),
  }


def load_builder(name: str, **kwargs: Any) -> rppg_builder.RppgBuilder:
  """`make_builder` + prepare if this exact (settings, source) is not prepared yet."""
  builder = make_builder(name, **kwargs)
  return preparation.prepare(builder, manual_dir=kwargs.get("manual_dir"))


def _decode(example: Mapping[str, Any]) -> dict[str, Any]:
  out = dict(example)
  for key in ("video_id", "subject_id"):
    if isinstance(out.get(key), bytes):
      out[key] = out[key].decode()
  out["valid"] = np.asarray(out["valid"]).astype(bool)
  return out


class VideoSource:
  """Random access to whole prepared videos (numpy dicts) of one split."""

  def __init__(self, builder: rppg_builder.RppgBuilder, split: str):
    if split not in builder.info.splits:
      raise ValueError(
          f"{builder.name} has no split {split!r}; available: {sorted(builder.info.splits)}"
      )
    self._source = builder.as_data_source(split)
    self.split = split
    self.name = builder.name

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return _decode(self._source[index])

  def __iter__(self) -> Iterator[dict[str, Any]]:
    for i in range(len(self)):
      yield self[i]


VAL_SPLIT = "val"  # eval_split name: subjects held out of the training split


class VideoSubset:
  """Some videos of a VideoSource (same interface), e.g. one side of a subject split."""

  def __init__(self, videos: VideoSource, indices: Sequence[int], *, split: str):
    self._videos = videos
    self.indices = [int(i) for i in indices]
    self.split = split
    self.name = videos.name

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._videos[self.indices[index]]

  def __iter__(self) -> Iterator[dict[str, Any]]:
    for i in range(len(self)):
      yield self[i]


# "SPLIT[subjects=ID,ID,...]": the videos of those subjects in SPLIT (e.g. one
# cross-validation fold of `full`); plain "SPLIT" is the whole split.
_SUBJECT_SPEC = re.compile(r"^(?P<split>[^\[\]]+)\[subjects=(?P<ids>[^\[\]]*)\]$")


def subjects_split(split: str, subjects: Sequence[str | int]) -> str:
  """The split spec that `open_split` reads as `subjects` of `split`."""
  ids = [str(s) for s in subjects]
  bad = [s for s in ids if not s or any(c in s for c in ",[]")]
  if bad or not ids:
    raise ValueError(f"subject ids must be non-empty and free of ',[]', got {ids}")
  return f"{split}[subjects={','.join(ids)}]"


def parse_split(spec: str) -> tuple[str, tuple[str, ...] | None]:
  """(split name, subject ids or None) of a split spec (see `subjects_split`)."""
  m = _SUBJECT_SPEC.match(spec)
  if m is None:
    if "[" in spec or "]" in spec:
      raise ValueError(f"split {spec!r}: expected 'SPLIT' or 'SPLIT[subjects=ID,ID,...]'")
    return spec, None
  ids = tuple(s.strip() for s in m.group("ids").split(",") if s.strip())
  if not ids:
    raise ValueError(f"split {spec!r} names no subject")
  return m.group("split"), ids


def split_dirname(spec: str) -> str:
  """A file-name-safe form of a split spec ("full[subjects=3,5]" -> "full-subjects-3-5")."""
  name, ids = parse_split(spec)
  return name if ids is None else f"{name}-subjects-{'-'.join(ids)}"


def open_split(builder: rppg_builder.RppgBuilder, spec: str) -> VideoSource | VideoSubset:
  """The videos of a split spec: a whole split, or some subjects of one.

  Every named subject must be in the split (a typo is an error, not a smaller
  test set).
  """
  name, ids = parse_split(spec)
  videos = VideoSource(builder, name)
  if ids is None:
    return videos
  subjects = [videos[i]["subject_id"] for i in range(len(videos))]
  missing = sorted(set(ids) - set(subjects), key=str)
  if missing:
    raise ValueError(
        f"{builder.name}/{name} has no subject(s) {missing}; it has {sorted(set(subjects))}"
    )
  wanted = set(ids)
  return VideoSubset(videos, [i for i, s in enumerate(subjects) if s in wanted], split=spec)


def _subject_rank(subject: str, seed: int) -> str:
  # A hash, not the sorted name: names often encode recording order or site.
  return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()


def val_subjects_of(
    subjects: Sequence[str], *, fraction: float, explicit: Sequence[str] = (), seed: int = 0
) -> list[str]:
  """Subjects held out for validation: `explicit` if given, else the first
  ceil(fraction * n) subjects in a seeded hash order (deterministic across
  machines and runs). At least one subject stays on each side."""
  unique = sorted(set(subjects))
  if explicit:
    unknown = sorted(set(explicit) - set(unique))
    if unknown:
      raise ValueError(
          f"val_subjects {unknown} are not subjects of the training split "
          f"(known: {unique[:10]}{' ...' if len(unique) > 10 else ''})"
      )
    chosen = sorted(set(explicit))
  else:
    if not 0.0 < fraction < 1.0:
      raise ValueError(f"val.fraction must be in (0, 1), got {fraction}")
    n_val = max(1, math.ceil(fraction * len(unique)))
    chosen = sorted(sorted(unique, key=lambda s: _subject_rank(s, seed))[:n_val])
  if len(unique) < 2 or len(chosen) >= len(unique):
    raise ValueError(
        f"a subject-disjoint validation split needs >= 2 training subjects and "
        f">= 1 left for training; have {len(unique)}, val would take {len(chosen)}"
    )
  return chosen


def train_val_videos(
    builder: rppg_builder.RppgBuilder, config: Mapping[str, Any]
) -> tuple[VideoSource | VideoSubset, VideoSource | VideoSubset]:
  """(training videos, model-selection videos) of a training config.

  `config.eval_split == "val"` (every shipped config): the selection videos are
  the subjects `val_subjects_of` holds out of `config.train_split` (config
  `val.fraction`, `val.subjects`, `val.seed`), and training sees only the rest.
  Another name is a dataset split used as it is (e.g. a dataset's own
  validation split); a test split is refused: model selection never reads test.
  """
  train_split = config["train_split"]
  eval_split = config["eval_split"]
  if eval_split != VAL_SPLIT:
    compare = config.get("compare") or {}
    tested = set(dict(compare.get("splits") or {}).values()) if compare.get("enabled") else set()
    if "test" in eval_split or eval_split in tested:
      raise ValueError(
          f"eval_split={eval_split!r} is a test split: checkpoint selection must "
          f"not read test data (use eval_split='{VAL_SPLIT}')"
      )
    return open_split(builder, train_split), open_split(builder, eval_split)
  full = open_split(builder, train_split)
  val_cfg = dict(config.get("val") or {})
  subjects = [full[i]["subject_id"] for i in range(len(full))]
  held_out = set(
      val_subjects_of(
          subjects,
          fraction=float(val_cfg.get("fraction", 0.2)),
          explicit=tuple(val_cfg.get("subjects") or ()),
          seed=int(val_cfg.get("seed", 0)),
      )
  )
  # The refit pass (train_lib.refit) trains on every subject; its validation
  # videos are then training videos, read only for the curves.
  train_on_val = bool(val_cfg.get("train_on_val", False))
  train_idx = [i for i, s in enumerate(subjects) if train_on_val or s not in held_out]
  val_idx = [i for i, s in enumerate(subjects) if s in held_out]
  logging.info(
      "%s/%s: %d videos of %d subjects for training, %d videos of %d %s "
      "subjects for validation (%s)",
      builder.name,
      train_split,
      len(train_idx),
      len({subjects[i] for i in train_idx}),
      len(val_idx),
      len(held_out),
      "trained-on" if train_on_val else "held-out",
      sorted(held_out),
  )
  train_name = "all" if train_on_val else "train"
  return (
      VideoSubset(full, train_idx, split=f"{split_dirname(train_split)}-{train_name}"),
      VideoSubset(full, val_idx, split=f"{split_dirname(train_split)}-{VAL_SPLIT}"),
  )


def _subjects(videos: VideoSource | VideoSubset) -> set[str]:
  return {str(videos[i]["subject_id"]) for i in range(len(videos))}


def cotrain_videos(
    config: Mapping[str, Any], builder: rppg_builder.RppgBuilder | None = None
) -> tuple[VideoSource | VideoSubset, float] | None:
  """(videos, weight) of the second dataset a video stage trains on, or None.

  `config.cotrain`: `dataset` ("" = none), its `manual_dir` and `dataset_options`,
  the `split` whose videos are trained on and the `weight`, the share of training
  clips drawn from it (0 < weight < 1; the rest come from `train_split`). It is
  prepared with the run's `preprocess` and `data_dir`, so its frames have the
  training split's size and rate. Checkpoints are still selected on the run's own
  validation subjects. Refused: a split named like a test split and, when
  `cotrain.dataset` is the run's own dataset (`builder`, loaded if not given),
  any co-training subject id that is one of the run's validation subjects or of
  the subjects its comparison tests (whatever the tree path or options: a
  synthetic subject's id names its seed).
  """
  cot = dict(config.get("cotrain") or {})
  name = cot.get("dataset") or ""
  if not name:
    return None
  weight = float(cot.get("weight", 0.5))
  if not 0.0 < weight < 1.0:
    raise ValueError(f"cotrain.weight must be in (0, 1), got {weight}")
  split = str(cot.get("split") or "train")
  if "test" in split:
    raise ValueError(f"cotrain.split={split!r} is a test split: training never reads test data")
  cot_builder = load_builder(
      name,
      **builder_kwargs(
          {
              "data_dir": config.get("data_dir"),
              "manual_dir": cot.get("manual_dir"),
              "preprocess": config["preprocess"],
              "dataset_options": cot.get("dataset_options"),
          }
      ),
  )
  videos = open_split(cot_builder, split)
  if name == config["dataset"]:
    if builder is None:
      builder = load_builder(config["dataset"], **builder_kwargs(config))
    held = _subjects(train_val_videos(builder, config)[1])
    compare = config.get("compare") or {}
    if compare.get("enabled"):
      for spec in dict(compare.get("splits") or {}).values():
        held |= _subjects(open_split(builder, spec))
    shared = sorted(_subjects(videos) & held)
    if shared:
      raise ValueError(
          f"cotrain {name}/{split} has subjects the run validates or tests on: "
          f"{shared[:10]}{' ...' if len(shared) > 10 else ''} (another tree, another "
          "split, or subjects outside the run's validation and test splits)"
      )
  logging.info(
      "co-training on %s/%s: %d videos, %.2f of the training clips", name, split, len(videos), weight
  )
  return videos, weight


def normalize_ppg(x: np.ndarray) -> np.ndarray:
  """CodePhys label normalisation: (x - mean) / max|x - mean| (float32)."""
  x = np.asarray(x, np.float32)
  centred = x - x.mean(axis=-1, keepdims=True)
  scale = np.max(np.abs(centred), axis=-1, keepdims=True)
  return centred / np.maximum(scale, 1e-6)


class ClipSource(grain.sources.RandomAccessDataSource):
  """Fixed-length clips cut from whole videos: (video, start) pairs in a fixed order.

  `source_length` (default: `clip_length`) is the window cut from the video,
  for augmentations that need more frames than the model's `clip_length`
  (speed resampling, see `augment.required_source_length`). Starts follow
  `stride` as without it; a start whose longer window would run past the end
  of the video is moved back so the window fits, and videos shorter than the
  window are left out.

  Decoded videos are cached (LRU): by default as many as fit `cache_budget_bytes`
  (the whole split for small datasets), or exactly `cache_videos`.
  """

  def __init__(
      self,
      videos: VideoSource,
      *,
      clip_length: int,
      stride: int | None = None,
      cache_videos: int | None = None,
      cache_budget_bytes: int = 1 << 30,
      source_length: int | None = None,
  ):
    self._videos = videos
    self.clip_length = clip_length
    window = clip_length if source_length is None else int(source_length)
    if window < clip_length:
      raise ValueError(f"source_length {window} is shorter than clip_length {clip_length}")
    self.source_length = window
    stride = stride or clip_length
    self.index: list[tuple[int, int]] = []
    self._cache: collections.OrderedDict[int, dict] = collections.OrderedDict()
    cached_bytes = 0
    for v in range(len(videos)):
      video = videos[v]
      n = len(video["ppg"])
      # Clips are drawn from all videos in random order: a cache smaller than
      # the split misses on most reads and re-decodes whole videos. Keep every
      # video that fits the budget (filled here, while the index is built).
      size = sum(np.asarray(x).nbytes for x in video.values())
      if cached_bytes + size <= cache_budget_bytes:
        self._cache[v] = video
        cached_bytes += size
      if n < window:
        continue
      starts = dict.fromkeys(min(s, n - window) for s in range(0, n - clip_length + 1, stride))
      self.index.extend((v, s) for s in starts)
    if not self.index:
      raise ValueError(f"{videos.name}/{videos.split}: no video is at least {window} frames long")
    self._cache_size = max(1, len(self._cache)) if cache_videos is None else cache_videos
    while len(self._cache) > self._cache_size:
      self._cache.popitem(last=False)
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return len(self.index)

  def _video(self, v: int) -> dict[str, Any]:
    with self._lock:
      if v in self._cache:
        self._cache.move_to_end(v)
        return self._cache[v]
    video = self._videos[v]
    with self._lock:
      self._cache[v] = video
      while len(self._cache) > self._cache_size:
        self._cache.popitem(last=False)
    return video

  def __getitem__(self, i: int) -> dict[str, Any]:
    v, s = self.index[i]
    video = self._video(v)
    sl = slice(s, s + self.source_length)
    return {
        "frames": video["frames"][sl],
        "ppg": normalize_ppg(video["ppg"][sl]),
        "fps": np.float32(video["fps"]),
        "video_index": np.int32(v),
        "start": np.int32(s),
    }

  def __repr__(self) -> str:
    return f"ClipSource({self._videos.name}/{self._videos.split}, n={len(self)})"


@dataclasses.dataclass(frozen=True)
class ClipMixture:
  """Training clips drawn from several clip sources at fixed proportions.

  Element k of the training stream comes from `sources[i]` for a share
  `weights[i] / sum(weights)` of the elements; each source is shuffled and
  repeated on its own, so every source is cycled through at its own pace.
  """

  sources: tuple[ClipSource, ...]
  weights: tuple[float, ...]

  def __post_init__(self):
    if len(self.sources) != len(self.weights) or len(self.sources) < 2:
      raise ValueError(
          f"a clip mixture needs >= 2 sources and one weight each, got "
          f"{len(self.sources)} sources and {len(self.weights)} weights"
      )
    if any(not (w > 0.0 and math.isfinite(w)) for w in self.weights):
      raise ValueError(f"mixture weights must be positive and finite, got {self.weights}")

  def __repr__(self) -> str:
    parts = ", ".join(f"{s!r} x {w:g}" for s, w in zip(self.sources, self.weights))
    return f"ClipMixture({parts})"


def _shuffled_stream(
    clips: ClipSource | ClipMixture, seed: int
) -> grain.MapDataset:
  """The infinite shuffled stream of training clips (one source or a mixture)."""
  if isinstance(clips, ClipMixture):
    # The first source keeps the single-source seed; the others get their own.
    parts = [
        grain.MapDataset.source(c).shuffle(seed=seed + 7919 * i).repeat(None)
        for i, c in enumerate(clips.sources)
    ]
    return grain.MapDataset.mix(parts, list(clips.weights))
  return grain.MapDataset.source(clips).shuffle(seed=seed).repeat(None)


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
  """What the training input pipeline needs to know (from the config)."""

  batch_size: int  # global batch size
  seed: int
  num_threads: int = 2
  prefetch: int = 4


def train_pipeline(
    clips: ClipSource | ClipMixture,
    spec: PipelineSpec,
    *,
    start_step: int = 0,
    augment: Callable[[dict, np.random.Generator], dict] | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Infinite iterator of this process's share of each global batch.

  Batches are deterministic functions of (seed, step): shuffle, augmentation and
  per-process sharding are all index-based, so `start_step` resumes exactly.
  """
  if spec.batch_size % process_count:
    raise ValueError(f"global batch {spec.batch_size} not divisible by {process_count} processes")
  local = spec.batch_size // process_count
  ds = _shuffled_stream(clips, spec.seed)
  if augment is not None:
    # Seeded by the global element index: identical whatever the process count.
    ds = ds.random_map(augment, seed=spec.seed + 1)

  def pick(j: int) -> dict[str, np.ndarray]:
    # Local element j belongs to global batch j // local; this process owns the
    # contiguous slice [process_index * local, (process_index + 1) * local).
    step, r = divmod(j, local)
    return ds[step * spec.batch_size + process_index * local + r]

  local_ds = (
      grain.MapDataset.range(start_step * local, _MAX_ELEMENTS)
      .map(pick)
      .batch(local, drop_remainder=True)
  )
  it = local_ds.to_iter_dataset(
      grain.ReadOptions(num_threads=spec.num_threads, prefetch_buffer_size=spec.prefetch)
  )
  return iter(it)


def eval_batches(clips: ClipSource, batch_size: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
  """Every clip once, in order, padded to full batches: (batch, num_real)."""
  n = len(clips)
  for lo in range(0, n, batch_size):
    items = [clips[i] for i in range(lo, min(lo + batch_size, n))]
    real = len(items)
    items += [items[-1]] * (batch_size - real)
    yield {k: np.stack([it[k] for it in items]) for k in items[0]}, real
