"""COHFACE (Heusch, Anjos and Marcel 2017), read from a manual download.

40 subjects x 4 sessions (0, 1: studio lighting; 2, 3: natural light), one
folder `<subject>/<session>/` each with `data.avi` (640x480, 20 fps) and
`data.hdf5` (datasets `pulse`, the contact PPG at 256 Hz, `respiration`, and
`time`, seconds). The PPG is put onto the frame times by the `time` dataset
(relative to its first sample, which starts with the video); the video is
resampled to the common rate (`PreprocessConfig.target_fps`, 30 fps) by the
shared preprocessing, by timestamps.

Protocol: the official `all` lists, `protocols/all/{train,dev,test}.txt`, one
`subject/session/data` line per video (12 / 12 / 16 subjects, all four sessions).
They are read from manual_dir when present; otherwise the same lists, built in
below (`OFFICIAL_SUBJECTS`), are used. Listed videos that are not in the tree
are left out (a partial download has smaller splits); `full` is every video found.

Clocks:
- Frames run on the container's clock (index / 20 fps from the decoder), the
  pulse on the `time` dataset (s, from the start of the video): two clocks
  that start together, which is how COHFACE is distributed.
- A copy that decodes one frame more than the pulse covers: the frame past the
  pulse's end is trimmed and counted (`trimmed_frames`) within
  `alignment.trim_bound`; more is an error naming the video.
- Repeated or backward `time` values are repaired by
  `alignment.repair_timestamps`, counted in `repaired_timestamps`; more
  than 5 % is an error. A gap in the pulse is interpolated across.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Sequence

import h5py
import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import raw_tree
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib

SESSIONS = (0, 1, 2, 3)
# The official `all` protocol (as distributed in protocols/all/*.txt), by subject.
OFFICIAL_SUBJECTS = {
    "train": (1, 4, 16, 21, 25, 27, 28, 29, 31, 33, 35, 38),
    "dev": (2, 5, 6, 7, 9, 17, 18, 19, 24, 36, 37, 39),
    "test": (3, 8, 10, 11, 12, 13, 14, 15, 20, 22, 23, 26, 30, 32, 34, 40),
}
PROTOCOL = "all"

_NUMBER_RE = re.compile(r"^(\d+)$")
_LIST_LINE_RE = re.compile(r"^(\d+)/(\d+)/data$")


def read_protocol_list(path: str) -> list[str]:
  """Keys ("subject/session") of one protocol file of `subject/session/data` lines."""
  keys = []
  for number, line in enumerate(raw_tree.read_lines(path), start=1):
    line = line.strip()
    if not line:
      continue
    m = _LIST_LINE_RE.match(line)
    if not m:
      raise alignment.PreparationError(
          f"{path}: line {number} is not 'subject/session/data' ({line!r})"
      )
    keys.append(f"{int(m.group(1))}/{int(m.group(2))}")
  return keys


def protocol_keys(manual_dir: str | None) -> dict[str, list[str]]:
  """Split -> keys of the official protocol (files in manual_dir, else built in)."""
  folder = os.path.join(manual_dir, "protocols", PROTOCOL) if manual_dir else ""
  if folder and os.path.isdir(folder):
    splits = {s: read_protocol_list(os.path.join(folder, f"{s}.txt")) for s in OFFICIAL_SUBJECTS}
  else:
    logging.info("cohface: no %s; using the built-in official lists", folder or "manual_dir")
    splits = {
        s: [f"{subj}/{sess}" for subj in subjects for sess in SESSIONS]
        for s, subjects in OFFICIAL_SUBJECTS.items()
    }
  seen: dict[str, str] = {}
  for split, keys in splits.items():
    for key in keys:
      if key in seen:
        raise alignment.PreparationError(
            f"{folder}: {key} is listed in both {seen[key]}.txt and {split}.txt"
        )
      seen[key] = split
  return splits


def parse_hdf5(path: str) -> alignment.RawLabels:
  """`data.hdf5`: `pulse` (256 Hz) on `time` (s), shifted to start at 0."""
  try:
    with h5py.File(path, "r") as f:
      missing = [k for k in ("pulse", "time") if k not in f]
      if missing:
        raise alignment.PreparationError(
            f"{path}: missing dataset(s) {missing}; found {sorted(f.keys())}"
        )
      pulse = np.asarray(f["pulse"][()], dtype=np.float64).ravel()
      times = np.asarray(f["time"][()], dtype=np.float64).ravel()
  except OSError as e:
    raise alignment.PreparationError(f"{path}: cannot read HDF5 ({e})") from e
  if pulse.size != times.size:
    raise alignment.PreparationError(
        f"{path}: {pulse.size} pulse samples but {times.size} time values"
    )
  if pulse.size < 2:
    raise alignment.PreparationError(f"{path}: only {pulse.size} pulse samples")
  return alignment.RawLabels(times=times - times[0], ppg=pulse)


class Cohface(rppg_builder.RppgBuilder):
  """COHFACE: 20 fps webcam videos resampled to 30 fps, official split lists."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: face crops, skin RGB, aligned PPG.",
      "1.1.0": "Repeated pulse times repaired and frames past the pulse trimmed, both "
      "counted (fields trimmed_frames/trimmed_labels/repaired_timestamps).",
  }
  HOMEPAGE = "https://www.idiap.ch/en/scientific-research/data/cohface"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request COHFACE from Idiap, unpack it and pass the folder holding the subject
  folders as manual_dir. Expected tree (40 subjects x 4 sessions):

    cohface/
      1/
        0/
          data.avi     # 640x480, 20 fps
          data.hdf5    # datasets: pulse (256 Hz), respiration, time (s)
        1/ 2/ 3/
      ...
      40/
      protocols/all/train.txt, dev.txt, test.txt   # optional: 'subject/session/data'
                                                   # lines; built-in copies otherwise
  """
  BUILDER_CONFIGS = [
      rppg_builder.RppgConfig(
          preprocess=preprocess_lib.PreprocessConfig(size=72),
          name="default",
          version=VERSION,
      )
  ]

  def list_items(self, manual_dir: str) -> list[rppg_builder.Item]:
    items = []
    for subject, s_name in raw_tree.numbered_dirs(manual_dir, _NUMBER_RE):
      s_dir = os.path.join(manual_dir, s_name)
      for session, t_name in raw_tree.numbered_dirs(s_dir, _NUMBER_RE):
        items.append(
            rppg_builder.Item(
                key=f"{subject}/{session}",
                subject_id=str(subject),
                payload={"dir": os.path.join(s_dir, t_name)},
            )
        )
    return items

  def split_keys(
      self, items: Sequence[rppg_builder.Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    found = {it.key for it in items}
    # Without a tree (manual_dir None) the built-in official lists apply.
    listed = protocol_keys(manual_dir)
    splits = {}
    for split, keys in listed.items():
      splits[split] = [k for k in keys if k in found]
      if len(splits[split]) < len(keys):
        logging.info("cohface: %s lists %d videos, %d found", split, len(keys), len(splits[split]))
    splits["full"] = [it.key for it in items]
    return splits

  @staticmethod
  def read_item(item: rppg_builder.Item):
    labels = parse_hdf5(raw_tree.item_file(item, "data.hdf5"))
    source = video_lib.open_video(os.path.join(item.payload["dir"], "data.avi"))
    return source, labels
