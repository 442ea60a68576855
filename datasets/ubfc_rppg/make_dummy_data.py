"""Writes datasets/ubfc_rppg/dummy_data: a miniature DATASET_2 in the real layout.

Tiny rendered face videos (MJPG .avi to stay commit-sized; `write_tree` takes
codec="FFV1" for lossless ones, and one `vid.mp4` (mp4v) exercises "vid.*
whatever its container") with real-format ground_truth.txt
files (PPG line, device HR line, logging-time line). The real copies' quirks
are reproduced (see `QUIRKS`): a video that decodes to one frame more than the
file has samples, logging times that repeat, and a logging gap of 0.5 s that
the video does not have (line 3 then catches up with the frames). Sample i
always belongs to frame i. Deterministic; re-run to regenerate:

  ./run.sh python datasets/ubfc_rppg/make_dummy_data.py

`write_tree` writes the same kind of tree anywhere (tests use it for bigger trees).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Mapping

import cv2
import numpy as np

from codephys_jax import synthetic_video
from codephys_jax import video as video_lib

OUT = os.path.join(os.path.dirname(__file__), "dummy_data")
# 1 and 3 are train subjects, 42 and 45 test subjects, 11 is excluded by the protocol.
SUBJECTS = {1: "avi", 3: "mp4", 11: "avi", 42: "avi", 45: "avi"}
# Per subject: which real-copy quirks its files have.
QUIRKS = {
    1: ("extra_frame",),
    3: ("repeated_times", "logging_gap"),
    11: (),
    42: ("extra_frame", "repeated_times", "logging_gap"),
    45: (),
}
ALL_QUIRKS = ("extra_frame", "repeated_times", "logging_gap")
SECONDS = 4.0
FPS = 30.0
GAP_S = 0.5


def mp4_available() -> bool:
  """Whether this OpenCV build can write mp4v into .mp4."""
  with tempfile.TemporaryDirectory() as tmp:
    writer = cv2.VideoWriter(
        os.path.join(tmp, "probe.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (16, 16)
    )
    ok = writer.isOpened()
    writer.release()
  return ok


def logging_times(n: int, quirks: tuple[str, ...], *, gap_at: float = 0.3) -> np.ndarray:
  """Line 3 as the oximeter logs it: frame times plus the quirks' distortions."""
  t = np.arange(n, dtype=np.float64) / FPS
  if "logging_gap" in quirks:
    # A GAP_S stall in logging at `gap_at` of the recording; the log then
    # catches up with the video over the next 2 s (the video has no gap).
    b = int(gap_at * n)
    catch_up = int(2.0 * FPS)
    offset = np.zeros(n)
    offset[b : b + catch_up] = GAP_S * (1.0 - np.arange(min(catch_up, n - b)) / catch_up)
    t = t + offset
  if "repeated_times" in quirks:
    for i in (int(0.6 * n), int(0.8 * n)):
      t[i + 1] = t[i]  # the same logged value twice
  return t


def write_subject(
    out: str,
    number: int,
    container: str,
    quirks: tuple[str, ...],
    *,
    seconds: float = SECONDS,
    hr_range_bpm: tuple[float, float] = (55.0, 120.0),
    avi_codec: str = "MJPG",
    width: int = 160,
    height: int = 120,
) -> synthetic_video.SyntheticSubject:
  """One `subject<number>/` folder; returns the rendered subject (its PPG is line 1)."""
  subject = synthetic_video.make_subject(
      1000 + number,
      duration_s=seconds,
      fps=FPS,
      width=width,
      height=height,
      noise_std=0.8,
      hr_range_bpm=hr_range_bpm,
  )
  folder = os.path.join(out, f"subject{number}")
  os.makedirs(folder, exist_ok=True)
  codec = avi_codec if container == "avi" else "mp4v"
  n = subject.num_frames
  # The rendered video has one frame more than the labels when the quirk is on.
  frames_subject = subject
  if "extra_frame" in quirks:
    frames_subject = synthetic_video.make_subject(
        1000 + number,
        duration_s=(n + 1) / FPS,
        fps=FPS,
        width=width,
        height=height,
        noise_std=0.8,
        hr_range_bpm=hr_range_bpm,
    )
  video_lib.write_video(
      os.path.join(folder, f"vid.{container}"), frames_subject.frames(), FPS, codec=codec
  )
  ppg = frames_subject.ppg[:n]
  # The device HR line is deliberately glitchy, as in the real files.
  device_hr = np.full(n, round(subject.mean_hr))
  device_hr[::17] = 0
  with open(os.path.join(folder, "ground_truth.txt"), "w") as f:
    f.write(" ".join(f"{v:.7e}" for v in ppg) + "\n")
    f.write(" ".join(f"{v:.7e}" for v in device_hr) + "\n")
    f.write(" ".join(f"{v:.7e}" for v in logging_times(n, quirks)) + "\n")
  return frames_subject


def write_tree(
    out: str,
    subjects: Mapping[int, str] | None = None,
    quirks: Mapping[int, tuple[str, ...]] | None = None,
    **kwargs,
) -> None:
  """A DATASET_2-like tree under `out`: {number: container} with {number: quirks}.

  A requested .mp4 falls back to a lossless .avi where OpenCV cannot write mp4v.
  """
  subjects = dict(SUBJECTS if subjects is None else subjects)
  quirks = dict(QUIRKS if quirks is None else quirks)
  mp4 = mp4_available()
  for number, container in subjects.items():
    if container == "mp4" and not mp4:
      container = "avi"
    write_subject(out, number, container, tuple(quirks.get(number, ())), **kwargs)


def main() -> None:
  shutil.rmtree(OUT, ignore_errors=True)
  write_tree(OUT)
  print(f"wrote {len(SUBJECTS)} subjects under {OUT}")


if __name__ == "__main__":
  main()
