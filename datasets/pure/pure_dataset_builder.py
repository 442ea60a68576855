"""PURE (Stricker, Mueller and Gross 2014), read from a manual download.

10 subjects x 6 head-motion tasks, one folder `ii-jj` each: the frames are
lossless PNGs `ii-jj/ii-jj/Image<timestamp_ns>.png` and `ii-jj/ii-jj.json`
holds the pulse oximeter stream (`/FullPackage`, ~60 Hz) and the frame
timestamps (`/Image`), all in nanoseconds on one clock. The PPG is put onto the
frames by those timestamps (never by counting samples): both are shifted to
seconds relative to the first frame, the integer subtraction done in int64
because nanosecond epochs exceed float64's exact range.

Protocol (CodePhys family): train on subjects 01, 04, 05, 06, 07, 08, 09 and
test on 02, 03, 10; `full` holds every sequence found.

Clocks:
- Frames (`/Image`, file names) and PPG (`/FullPackage`) carry timestamps of
  the same recording machine: the PPG goes onto the frames by those times.
- One extra frame (a PNG past the oximeter's last sample) lies outside the
  labels' span: it is trimmed and counted (`trimmed_frames`) within
  `alignment.trim_bound`; more is an error naming the sequence. A PNG that
  `/Image` does not list (or the reverse) is an error: the two lists disagree.
- Repeated or backward `/FullPackage` timestamps are repaired by
  `alignment.repair_timestamps` (first of a repeat kept, backward samples
  dropped), counted in `repaired_timestamps`; more than 5 % is an error. A gap
  in the oximeter stream is interpolated across. Frame timestamps are the
  file names, unique by construction.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib

TRAIN_SUBJECTS = (1, 4, 5, 6, 7, 8, 9)
TEST_SUBJECTS = (2, 3, 10)

_SEQUENCE_RE = re.compile(r"^(\d{2})-(\d{2})$")
_IMAGE_RE = re.compile(r"^Image(\d+)\.png$")
_NS_PER_S = 1e9


def _timestamps_ns(entries: Any, path: str, field: str) -> np.ndarray:
  if not isinstance(entries, list) or not entries:
    raise alignment.PreparationError(f"{path}: '{field}' is missing or empty")
  try:
    return np.array([int(e["Timestamp"]) for e in entries], dtype=np.int64)
  except (KeyError, TypeError, ValueError) as e:
    raise alignment.PreparationError(
        f"{path}: '{field}' entry without an integer Timestamp ({e!r})"
    ) from e


def parse_json(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Read `ii-jj.json`: (PPG timestamps ns int64, waveform float64, frame timestamps ns)."""
  try:
    with open(path) as f:
      doc = json.load(f)
  except OSError as e:
    raise alignment.PreparationError(f"{path}: cannot read ({e})") from e
  except json.JSONDecodeError as e:
    raise alignment.PreparationError(f"{path}: not valid JSON ({e})") from e
  if not isinstance(doc, dict):
    raise alignment.PreparationError(f"{path}: expected a JSON object at the top level")
  package = doc.get("/FullPackage")
  ppg_ns = _timestamps_ns(package, path, "/FullPackage")
  try:
    wave = np.array([float(e["Value"]["waveform"]) for e in package], dtype=np.float64)
  except (KeyError, TypeError, ValueError) as e:
    raise alignment.PreparationError(
        f"{path}: '/FullPackage' entry without a numeric Value.waveform ({e!r})"
    ) from e
  frame_ns = _timestamps_ns(doc.get("/Image"), path, "/Image")
  return ppg_ns, wave, frame_ns


def list_frames(frame_dir: str) -> tuple[list[str], np.ndarray]:
  """The `Image<ns>.png` files of a sequence, ordered by their timestamp (int64 ns)."""
  if not os.path.isdir(frame_dir):
    raise alignment.PreparationError(f"{frame_dir}: frame folder is missing")
  found = []
  for name in os.listdir(frame_dir):
    m = _IMAGE_RE.match(name)
    if m:
      found.append((int(m.group(1)), name))
  if not found:
    raise alignment.PreparationError(f"{frame_dir}: no Image<timestamp>.png frames")
  found.sort()
  return (
      [os.path.join(frame_dir, name) for _, name in found],
      np.array([ns for ns, _ in found], dtype=np.int64),
  )


def read_sequence(
    seq_dir: str, name: str
) -> tuple[video_lib.ImageSequenceSource, alignment.RawLabels]:
  """Frames (lazy PNG source) and PPG of one `ii-jj` folder, on one clock in seconds."""
  json_path = os.path.join(seq_dir, f"{name}.json")
  ppg_ns, wave, listed_ns = parse_json(json_path)
  paths, file_ns = list_frames(os.path.join(seq_dir, name))
  # The file names and the JSON's /Image list must describe the same frames;
  # otherwise one of them is truncated or from another recording.
  if not np.array_equal(np.sort(listed_ns), file_ns):
    only_files = np.setdiff1d(file_ns, listed_ns).size
    only_json = np.setdiff1d(listed_ns, file_ns).size
    raise alignment.PreparationError(
        f"{json_path}: /Image lists {listed_ns.size} frames but {len(paths)} PNG files "
        f"are present ({only_files} files not listed, {only_json} listed but missing)"
    )
  t0 = file_ns[0]
  frame_s = (file_ns - t0) / _NS_PER_S
  labels = alignment.RawLabels(times=(ppg_ns - t0) / _NS_PER_S, ppg=wave)
  source = video_lib.ImageSequenceSource(paths, frame_s, name=os.path.join(seq_dir, name))
  return source, labels


class Pure(rppg_builder.RppgBuilder):
  """PURE: face crops from the PNG sequences, PPG aligned by timestamps."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: face crops, skin RGB, aligned PPG.",
      "1.1.0": "Repeated PPG timestamps repaired and frames past the PPG trimmed, both "
      "counted (fields trimmed_frames/trimmed_labels/repaired_timestamps).",
  }
  HOMEPAGE = (
      "https://www.tu-ilmenau.de/en/university/departments/department-of-computer-"
      "science-and-automation/profile/institutes-and-groups/institute-of-computer-and-"
      "systems-engineering/group-for-neuroinformatics-and-cognitive-robotics/data-sets-"
      "code/pulse-rate-detection-dataset-pure"
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request PURE from TU Ilmenau, unpack every sequence into one folder and pass
  it as manual_dir. Expected tree (10 subjects x 6 tasks):

    PURE/
      01-01/
        01-01/
          Image1392643993642815000.png   # one lossless PNG per frame, name = ns
          ...
        01-01.json     # {"/FullPackage": [{"Timestamp": ns, "Value": {"waveform",
                       #   "pulseRate", "o2saturation", "signalStrength"}}, ...],
                       #  "/Image": [{"Timestamp": ns}, ...]}
      01-02/
      ...
      10-06/
  """
  BUILDER_CONFIGS = [
      rppg_builder.RppgConfig(
          preprocess=preprocess_lib.PreprocessConfig(size=72),
          name="default",
          version=VERSION,
      )
  ]

  def list_items(self, manual_dir: str) -> list[rppg_builder.Item]:
    found = []
    for name in os.listdir(manual_dir):
      m = _SEQUENCE_RE.match(name)
      if m and os.path.isdir(os.path.join(manual_dir, name)):
        found.append((int(m.group(1)), int(m.group(2)), name))
    found.sort()  # natural (subject, task) order
    return [
        rppg_builder.Item(
            key=name,
            subject_id=str(subject),
            payload={"dir": os.path.join(manual_dir, name), "name": name},
        )
        for subject, _, name in found
    ]

  def split_keys(
      self, items: Sequence[rppg_builder.Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    del manual_dir  # the protocol is the fixed subject lists above

    def of(subjects):
      wanted = set(subjects)
      return [it.key for it in items if int(it.subject_id) in wanted]

    return {
        "train": of(TRAIN_SUBJECTS),
        "test": of(TEST_SUBJECTS),
        "full": [it.key for it in items],
    }

  @staticmethod
  def read_item(item: rppg_builder.Item):
    return read_sequence(item.payload["dir"], item.payload["name"])
