"""Writes datasets/ubfc_rppg/dummy_data: a miniature DATASET_2 in the real layout.

Tiny rendered face videos (MJPG .avi, and one .mp4 to exercise "vid.* whatever
its container") with real-format ground_truth.txt files (PPG line, device HR
line, timestamp line). Deterministic; re-run to regenerate:

  ./run.sh python datasets/ubfc_rppg/make_dummy_data.py
"""

import os
import shutil

import numpy as np

from codephys_jax import synthetic_video
from codephys_jax import video as video_lib

OUT = os.path.join(os.path.dirname(__file__), "dummy_data")
# 1 and 3 are train subjects, 42 and 45 test subjects, 11 is excluded by the protocol.
SUBJECTS = {1: "avi", 3: "mp4", 11: "avi", 42: "avi", 45: "avi"}
SECONDS = 4.0
FPS = 30.0


def write_subject(number: int, container: str) -> None:
  subject = synthetic_video.make_subject(
      1000 + number, duration_s=SECONDS, fps=FPS, width=160, height=120,
      noise_std=0.8,
  )
  folder = os.path.join(OUT, f"subject{number}")
  os.makedirs(folder, exist_ok=True)
  codec = "MJPG" if container == "avi" else "mp4v"
  video_lib.write_video(os.path.join(folder, f"vid.{container}"), subject.frames(),
                        FPS, codec=codec)
  # The device HR line is deliberately glitchy, as in the real files.
  device_hr = np.full(subject.num_frames, round(subject.mean_hr))
  device_hr[::17] = 0
  with open(os.path.join(folder, "ground_truth.txt"), "w") as f:
    f.write(" ".join(f"{v:.7e}" for v in subject.ppg) + "\n")
    f.write(" ".join(f"{v:.7e}" for v in device_hr) + "\n")
    f.write(" ".join(f"{v:.7e}" for v in subject.timestamps) + "\n")


def main() -> None:
  shutil.rmtree(OUT, ignore_errors=True)
  for number, container in SUBJECTS.items():
    write_subject(number, container)
  print(f"wrote {len(SUBJECTS)} subjects under {OUT}")


if __name__ == "__main__":
  main()
