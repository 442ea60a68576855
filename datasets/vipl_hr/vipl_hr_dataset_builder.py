"""VIPL-HR (Niu et al. 2018), read from a manual download.

107 subjects, up to 9 scenarios `vYY` each, recorded by up to 4 devices
`sourceZ` (1: webcam, 2: phone, 3: tablet, 4: near-infrared camera). Each
`pXX/vYY/sourceZ/` folder holds `video.avi`, `wave.csv` (header `Wave`, PPG at
60 Hz), `gt_HR.csv`, `gt_SpO2.csv` and, for the phone/tablet sources,
`time.txt` (one frame timestamp per line, milliseconds). The phone containers'
nominal frame rates are unreliable, so when `time.txt` is present it is the
frame clock (see `TimestampedSource`); the PPG is sampled at index / 60 s from
the first frame.

Protocol (RhythmNet / CodePhys family): five subject-exclusive folds given by
`fold1.mat` .. `fold5.mat`; split `foldK` is the test set of fold K and
`train_foldK` its complement (the subjects of the other fold files); `full` is
every RGB item. source4 (NIR) is not listed at all, and the three videos
documented as broken (`EXCLUDED`) are listed but left out of every split.

Clocks:
- The PPG (`wave.csv`) is sampled separately at 60 Hz from the first frame: its
  clock is sample index / 60 s. The frames' clock is `time.txt` where present
  (phone/tablet), else the container's (webcam). Labels go onto the frames by
  these timestamps.
- A video that decodes to one frame more than `time.txt` has lines: the extra
  frame is dropped and counted (`trimmed_frames`), within
  `alignment.trim_bound`; a larger difference is an error naming the file.
  Frames (either clock) beyond the end of `wave.csv` are trimmed the same way.
- Repeated or backward values in `time.txt` are repaired by
  `alignment.repair_timestamps` (their frames dropped), counted in
  `repaired_timestamps`; more than 5 % of them is an error naming the file.
  A gap in `time.txt` (frames the phone dropped) is real time and kept.

Fold files: a MATLAB (v5, not v7.3) file per fold, read with scipy.io.loadmat.
The subject list is the variable `foldK` (K = the file's number), else `fold`,
else the file's only variable; it may be a numeric array of subject numbers
(any shape) or strings such as "p12" / "12".
"""

from __future__ import annotations

import os
import re
from typing import Iterator, Sequence

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import raw_tree
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib

PPG_HZ = 60.0
NUM_FOLDS = 5
RGB_SOURCES = (1, 2, 3)  # source4 is the NIR camera: not an RGB rPPG input
# Videos documented as broken (unreadable / truncated) in the release.
EXCLUDED = ("p32/v7/source3", "p45/v1/source2", "p19/v2/source2")

_SUBJECT_RE = re.compile(r"^p(\d+)$")
_SCENARIO_RE = re.compile(r"^v(\d+)$")
_SOURCE_RE = re.compile(r"^source(\d+)$")
_FOLD_ENTRY_RE = re.compile(r"^p?(\d+)$")


class TimestampedSource(video_lib.FrameSource):
  """A decoded video whose frames are re-stamped from an explicit timestamp list.

  Used for VIPL-HR's phone/tablet videos, whose container frame rate is not the
  real one: frame i gets `timestamps_s[i]`. Repeated or backward timestamps are
  repaired by `alignment.repair_timestamps`: their frames are dropped (a
  frame cannot be placed on the clock). Decoded frames beyond the list's end
  are dropped, and a list longer than the video is accepted, both within
  `alignment.trim_bound`; more is an error naming the timestamp file. What
  was dropped is in `alignment_counts` once the source has been iterated.
  """

  def __init__(
      self, inner: video_lib.FrameSource, timestamps_s: np.ndarray, *, timestamps_path: str
  ):
    ts = np.asarray(timestamps_s, dtype=np.float64)
    self.inner = inner
    self.timestamps_path = timestamps_path
    self.path = inner.path
    if ts.ndim != 1 or ts.size < 2:
      raise video_lib.VideoError(timestamps_path, f"need >= 2 frame timestamps, got {ts.size}")
    self.keep, self.repaired = alignment.repair_timestamps(timestamps_path, ts)
    self.timestamps = ts
    self.fps = float(1.0 / np.median(np.diff(ts[self.keep])))
    self.num_frames = ts.size
    self.alignment_counts = {"trimmed_frames": 0, "repaired_timestamps": self.repaired}

  @property
  def size(self) -> tuple[int, int]:
    return self.inner.size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    count = 0
    bound = alignment.trim_bound(self.timestamps.size)
    for _, frame in self.inner:
      if count < self.timestamps.size and self.keep[count]:
        yield float(self.timestamps[count]), frame
      count += 1
    extra = count - self.timestamps.size
    if abs(extra) > bound:
      raise video_lib.VideoError(
          self.timestamps_path,
          f"{self.timestamps.size} timestamps but {self.path} has {count} frames "
          f"(at most {bound} are trimmed)",
      )
    self.alignment_counts = {"trimmed_frames": max(extra, 0), "repaired_timestamps": self.repaired}

  def close(self) -> None:
    self.inner.close()


def _numeric_lines(path: str, *, header: str | None) -> np.ndarray:
  lines = [ln.strip() for ln in raw_tree.read_lines(path)]
  lines = [(i, ln) for i, ln in enumerate(lines, start=1) if ln]
  if header is not None:
    if not lines or lines[0][1].strip('"').lower() != header.lower():
      raise alignment.PreparationError(
          f"{path}: expected a '{header}' header line, found "
          f"{lines[0][1] if lines else 'an empty file'!r}"
      )
    lines = lines[1:]
  values = []
  for number, ln in lines:
    try:
      values.append(float(ln.split(",")[0]))
    except ValueError as e:
      raise alignment.PreparationError(f"{path}: line {number} is not numeric ({ln!r})") from e
  return np.array(values, dtype=np.float64)


def parse_wave(path: str) -> alignment.RawLabels:
  """`wave.csv`: header `Wave`, one PPG sample per line at 60 Hz from the first frame."""
  ppg = _numeric_lines(path, header="Wave")
  if not np.all(np.isfinite(ppg)):
    raise alignment.PreparationError(f"{path}: PPG contains NaN/inf")
  return alignment.RawLabels(times=np.arange(ppg.size) / PPG_HZ, ppg=ppg)


def parse_time(path: str) -> np.ndarray:
  """`time.txt`: one frame timestamp (ms) per line -> seconds from the first line."""
  ms = _numeric_lines(path, header=None)
  if ms.size < 2:
    raise alignment.PreparationError(f"{path}: {ms.size} timestamps; need >= 2")
  if not np.all(np.isfinite(ms)):
    raise alignment.PreparationError(f"{path}: timestamps contain NaN/inf")
  # Repeated / backward values are repaired (and counted) by TimestampedSource.
  return (ms - ms[0]) / 1000.0


def _fold_entries(values: np.ndarray, path: str) -> list[int]:
  flat = np.asarray(values).ravel()
  if flat.dtype.kind in "iuf":
    if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)) or np.any(flat < 1):
      raise alignment.PreparationError(f"{path}: subject ids must be positive integers")
    return sorted({int(v) for v in flat})
  out = set()
  for v in flat:  # cell arrays of strings load as object arrays of arrays
    text = str(np.asarray(v).ravel()[0] if np.asarray(v).size else "").strip()
    m = _FOLD_ENTRY_RE.match(text)
    if not m:
      raise alignment.PreparationError(f"{path}: cannot read subject id {text!r}")
    out.add(int(m.group(1)))
  return sorted(out)


def read_fold(path: str, fold: int) -> list[int]:
  """Subject numbers of `fold<fold>.mat` (variable `fold<fold>`, `fold` or the only one)."""
  try:
    mat = scipy.io.loadmat(path)
  except (OSError, ValueError, NotImplementedError) as e:
    raise alignment.PreparationError(f"{path}: cannot read MATLAB file ({e})") from e
  variables = {k: v for k, v in mat.items() if not k.startswith("__")}
  for name in (f"fold{fold}", "fold"):
    if name in variables:
      return _fold_entries(variables[name], path)
  if len(variables) == 1:
    return _fold_entries(next(iter(variables.values())), path)
  raise alignment.PreparationError(
      f"{path}: no variable 'fold{fold}' or 'fold' and not exactly one variable "
      f"(found {sorted(variables)})"
  )


def _data_root(manual_dir: str) -> str:
  return raw_tree.data_root(manual_dir, _SUBJECT_RE, "data")


class ViplHr(rppg_builder.RppgBuilder):
  """VIPL-HR: RGB sources, frame clocks from time.txt, 5 subject-exclusive folds."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: face crops, skin RGB, aligned PPG.",
      "1.1.0": "time.txt repeats repaired and one-frame slack trimmed, both counted "
      "(fields trimmed_frames/trimmed_labels/repaired_timestamps).",
  }
  HOMEPAGE = "https://vipl.ict.ac.cn/resources/databases/201811/t20181129_32716.html"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request VIPL-HR from the VIPL group (ICT, CAS), unpack it and pass its folder
  as manual_dir (the folder holding p1 .. p107, or its parent holding `data/`).
  Put the five fold files next to the subject folders or in manual_dir:

    VIPL-HR/
      fold1.mat .. fold5.mat   # subject numbers per fold (variable fold1 .. fold5)
      data/
        p1/
          v1/
            source1/
              video.avi  wave.csv  gt_HR.csv  gt_SpO2.csv
            source2/
              video.avi  wave.csv  gt_HR.csv  gt_SpO2.csv  time.txt
            source3/  ...
            source4/  (near-infrared: ignored)
          v2/ ...
        p107/
  """
  BUILDER_CONFIGS = [
      rppg_builder.RppgConfig(
          preprocess=preprocess_lib.PreprocessConfig(size=72),
          name="default",
          version=VERSION,
      )
  ]

  def list_items(self, manual_dir: str) -> list[rppg_builder.Item]:
    root = _data_root(manual_dir)
    items = []
    for p, p_name in raw_tree.numbered_dirs(root, _SUBJECT_RE):
      for _, v_name in raw_tree.numbered_dirs(os.path.join(root, p_name), _SCENARIO_RE):
        v_dir = os.path.join(root, p_name, v_name)
        for s, s_name in raw_tree.numbered_dirs(v_dir, _SOURCE_RE):
          if s not in RGB_SOURCES:
            continue
          items.append(
              rppg_builder.Item(
                  key=f"{p_name}/{v_name}/{s_name}",
                  subject_id=str(p),
                  payload={"dir": os.path.join(v_dir, s_name)},
              )
          )
    return items

  def expected_exclusions(self, items: Sequence[rppg_builder.Item]) -> int:
    return sum(it.key in EXCLUDED for it in items)

  def fold_subjects(self, manual_dir: str) -> dict[int, list[int]]:
    """Fold number -> subject numbers, from the fold files found (disjoint)."""
    dirs = list(dict.fromkeys([manual_dir, _data_root(manual_dir)]))
    folds, owner = {}, {}
    for k in range(1, NUM_FOLDS + 1):
      paths = [os.path.join(d, f"fold{k}.mat") for d in dirs]
      paths = [p for p in paths if os.path.isfile(p)]
      if not paths:
        continue
      folds[k] = read_fold(paths[0], k)
      for subject in folds[k]:
        if subject in owner:
          raise alignment.PreparationError(
              f"{paths[0]}: subject {subject} is also in fold{owner[subject]}.mat; "
              "folds must be subject-exclusive"
          )
        owner[subject] = k
    return folds

  def split_keys(
      self, items: Sequence[rppg_builder.Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    if manual_dir is None:
      # The folds live in files of the tree: without it they would silently vanish.
      raise ValueError("vipl_hr: split_keys needs manual_dir to find fold1.mat .. fold5.mat")
    kept = [it for it in items if it.key not in EXCLUDED]
    splits = {"full": [it.key for it in kept]}
    folds = self.fold_subjects(manual_dir)
    for k, subjects in folds.items():
      test = set(subjects)
      train = {s for j, other in folds.items() if j != k for s in other}
      splits[f"fold{k}"] = [it.key for it in kept if int(it.subject_id) in test]
      splits[f"train_fold{k}"] = [it.key for it in kept if int(it.subject_id) in train]
    return splits

  @staticmethod
  def read_item(item: rppg_builder.Item):
    folder = item.payload["dir"]
    labels = parse_wave(raw_tree.item_file(item, "wave.csv"))
    source = video_lib.open_video(os.path.join(folder, "video.avi"))
    time_path = os.path.join(folder, "time.txt")
    if os.path.isfile(time_path):
      source = TimestampedSource(source, parse_time(time_path), timestamps_path=time_path)
    return source, labels
