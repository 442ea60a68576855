"""Writes datasets/cohface/dummy_data: a miniature COHFACE in the real layout.

Four videos `<subject>/<session>/data.avi` (MJPG, 20 fps as in COHFACE) with
`data.hdf5` (`pulse` at 256 Hz, `respiration`, `time` in seconds): 1/0 and 1/2
(train subject), 17/0 (dev) and 3/1 (test). `protocols/all/*.txt` are the full
official lists (`subject/session/data` lines), so most listed videos are absent
here, as in a partial download. Deterministic; re-run to regenerate:

  ./run.sh python datasets/cohface/make_dummy_data.py
"""

import os
import shutil

import h5py
import numpy as np
from scipy import interpolate

from codephys_jax import synthetic_video
from codephys_jax import video as video_lib
from codephys_jax._builders import cohface

OUT = os.path.join(os.path.dirname(__file__), "dummy_data")
VIDEOS = ("1/0", "1/2", "17/0", "3/1")
SECONDS = 4.0
FPS = 20.0
PULSE_HZ = 256.0


def write_video(key: str, seed: int) -> None:
  subject = synthetic_video.make_subject(
      seed, duration_s=SECONDS, fps=FPS, width=160, height=120, noise_std=0.8,
  )
  folder = os.path.join(OUT, key)
  os.makedirs(folder, exist_ok=True)
  video_lib.write_video(os.path.join(folder, "data.avi"), subject.frames(), FPS,
                        codec="MJPG")
  times = np.arange(int(SECONDS * PULSE_HZ)) / PULSE_HZ
  pulse = interpolate.CubicSpline(subject.timestamps, subject.ppg)(times)
  respiration = np.sin(2 * np.pi * 0.25 * times)
  with h5py.File(os.path.join(folder, "data.hdf5"), "w") as f:
    f.create_dataset("pulse", data=pulse.astype(np.float64))
    f.create_dataset("respiration", data=respiration.astype(np.float64))
    f.create_dataset("time", data=times)


def write_protocols() -> None:
  folder = os.path.join(OUT, "protocols", "all")
  os.makedirs(folder, exist_ok=True)
  for split, subjects in cohface.OFFICIAL_SUBJECTS.items():
    with open(os.path.join(folder, f"{split}.txt"), "w") as f:
      for subject in subjects:
        for session in cohface.SESSIONS:
          f.write(f"{subject}/{session}/data\n")


def main() -> None:
  shutil.rmtree(OUT, ignore_errors=True)
  for i, key in enumerate(VIDEOS):
    write_video(key, 4000 + i)
  write_protocols()
  print(f"wrote {len(VIDEOS)} videos and protocols/all under {OUT}")


if __name__ == "__main__":
  main()
