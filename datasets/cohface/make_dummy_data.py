"""Writes datasets/cohface/dummy_data: a miniature COHFACE in the real layout.

Four videos `<subject>/<session>/data.avi` (MJPG, 20 fps as in COHFACE) with
`data.hdf5` (`pulse` at 256 Hz, `respiration`, `time` in seconds): 1/0 and 1/2
(train subject), 17/0 (dev) and 3/1 (test). `protocols/all/*.txt` are the full
official lists (`subject/session/data` lines), so most listed videos are absent
here, as in a partial download. The quirks of real copies are reproduced in
1/0: the video decodes one frame past the pulse's end, the `time` dataset
repeats a value, and the pulse has a 0.3 s logging gap. Deterministic; re-run
to regenerate:

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
QUIRKY = ("1/0",)
GAP_S = (2.0, 2.3)


def write_video(key: str, seed: int) -> None:
  quirky = key in QUIRKY
  subject = synthetic_video.make_subject(
      seed,
      duration_s=SECONDS + (1 / FPS if quirky else 0),
      fps=FPS,
      width=160,
      height=120,
      noise_std=0.8,
  )
  folder = os.path.join(OUT, key)
  os.makedirs(folder, exist_ok=True)
  video_lib.write_video(os.path.join(folder, "data.avi"), subject.frames(), FPS, codec="MJPG")
  times = np.arange(int(SECONDS * PULSE_HZ)) / PULSE_HZ
  if quirky:
    # The pulse stops at the last labelled frame (the video has one more), has
    # a logging gap, and logs one time value twice.
    times = times[times <= SECONDS - 1 / FPS]
    times = times[(times < GAP_S[0]) | (times > GAP_S[1])]
  pulse = interpolate.CubicSpline(subject.timestamps, subject.ppg)(times)
  if quirky:
    times[times.size // 3 + 1] = times[times.size // 3]
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
