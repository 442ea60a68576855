"""UBFC-rPPG DATASET_2 (Bobbia et al. 2019), read from a manual download.

Protocol (CodePhys / PhysFormer family): drop subjects 11, 18, 20 and 24, sort
the rest in natural numeric order, train on the first 30 and test on the
remaining 8. The split is written out below as explicit subject ids so that it
never depends on directory listing order. `full` holds every subject found.

Clocks:
- Frames and labels share the video's frame index: `ground_truth.txt` holds one
  sample per video frame, sample i belongs to frame i. The labels therefore
  take the decoded frames' own timestamps (`RawLabels.per_frame`). Line 3 is the
  oximeter's logging time, not the video's: its spacing jitters from 0 to
  0.88 s and repeats values, so it is parsed but never used to align.
- A copy that decodes to one frame more (or fewer) than the file has samples
  (8 of 16 re-encoded copies checked decode one extra frame) is trimmed to the
  common length at the end, within `alignment.trim_bound` (2 frames or
  0.5 %), and counted in the example and the dataset's `item_counts`; a larger
  difference is a `PreparationError` naming the subject.
- Repeated or backward logging times (5 of 16 files) change nothing: that
  clock is not needed.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import raw_tree
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib

# The 42 subjects of DATASET_2, in natural order.
ALL_SUBJECTS = (
    1,
    3,
    4,
    5,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    20,
    22,
    23,
    24,
    25,
    26,
    27,
    30,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    40,
    41,
    42,
    43,
    44,
    45,
    46,
    47,
    48,
    49,
)
EXCLUDED_SUBJECTS = (11, 18, 20, 24)
_KEPT = tuple(s for s in ALL_SUBJECTS if s not in EXCLUDED_SUBJECTS)
TRAIN_SUBJECTS = _KEPT[:30]  # 1 .. 41
TEST_SUBJECTS = _KEPT[30:]  # 42 .. 49

_SUBJECT_RE = re.compile(r"^subject(\d+)$")


def parse_ground_truth(path: str) -> alignment.RawLabels:
  """Parse `ground_truth.txt`: line 1 PPG, line 2 device HR, line 3 logging times (s).

  The reference HR is derived from line 1, never from the glitchy line 2. The
  labels are per-frame; line 3 is kept in `times` for reference only (not
  checked for monotonicity: it repeats values and has gaps in real files).
  """
  lines = [ln for ln in raw_tree.read_lines(path) if ln.strip()]
  if len(lines) < 3:
    raise alignment.PreparationError(
        f"{path}: expected 3 lines (PPG, HR, timestamps), found {len(lines)}"
    )
  rows = []
  for number, line in enumerate(lines[:3], start=1):
    try:
      rows.append(np.array([float(v) for v in line.split()], dtype=np.float64))
    except ValueError as e:
      raise alignment.PreparationError(f"{path}: line {number} is not numeric ({e})") from e
  ppg, _, times = rows
  if ppg.size != times.size:
    raise alignment.PreparationError(
        f"{path}: {ppg.size} PPG samples but {times.size} timestamps"
    )
  if not np.all(np.isfinite(ppg)):
    raise alignment.PreparationError(f"{path}: PPG line contains NaN/inf")
  return alignment.RawLabels(times=times - times[0], ppg=ppg, per_frame=True)


def find_video(subject_dir: str) -> str:
  """The subject's `vid.*` file, whatever its container (avi, mp4, ...)."""
  names = sorted(n for n in os.listdir(subject_dir) if n.startswith("vid."))
  if not names:
    raise alignment.PreparationError(f"{subject_dir}: no vid.* video file")
  if len(names) > 1:
    raise alignment.PreparationError(
        f"{subject_dir}: several video files {names}; keep exactly one vid.*"
    )
  return os.path.join(subject_dir, names[0])


class UbfcRppg(rppg_builder.RppgBuilder):
  """UBFC-rPPG DATASET_2: face crops, PPG on frame times, protocol splits."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: face crops, skin RGB, aligned PPG.",
      "1.1.0": "PPG sample i on frame i by the frames' clock (line 3 no longer "
      "interpolated); one-frame count slack trimmed and counted; "
      "alignment fields trimmed_frames/trimmed_labels/repaired_timestamps.",
  }
  HOMEPAGE = "https://sites.google.com/view/ybenezeth/ubfcrppg"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request UBFC-rPPG from its authors, unpack DATASET_2 and pass its folder as
  manual_dir. Expected tree (42 subjects):

    DATASET_2/
      subject1/
        vid.avi             # any container OpenCV reads (vid.mp4 also accepted)
        ground_truth.txt    # 3 lines: PPG waveform, device HR, timestamps (s)
      subject3/
      ...
      subject49/
  """
  BUILDER_CONFIGS = [
      rppg_builder.RppgConfig(
          preprocess=preprocess_lib.PreprocessConfig(size=72),
          name="default",
          version=VERSION,
      )
  ]

  def list_items(self, manual_dir: str) -> list[rppg_builder.Item]:
    root = raw_tree.data_root(manual_dir, _SUBJECT_RE, "DATASET_2")
    return [
        rppg_builder.Item(
            key=name,
            subject_id=str(number),
            payload={"dir": os.path.join(root, name)},
        )
        for number, name in raw_tree.numbered_dirs(root, _SUBJECT_RE)
    ]

  def split_keys(
      self, items: Sequence[rppg_builder.Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    del manual_dir  # the protocol is the fixed subject lists above
    numbers = {int(it.subject_id): it.key for it in items}
    return {
        "train": [numbers[s] for s in TRAIN_SUBJECTS if s in numbers],
        "test": [numbers[s] for s in TEST_SUBJECTS if s in numbers],
        "full": [it.key for it in items],
    }

  @staticmethod
  def read_item(item: rppg_builder.Item):
    labels = parse_ground_truth(raw_tree.item_file(item, "ground_truth.txt"))
    source = video_lib.open_video(find_video(item.payload["dir"]))
    return source, labels
