"""Writes datasets/vipl_hr/dummy_data: a miniature VIPL-HR in the real layout.

  data/p1/v1/source1   webcam-like, no time.txt (container clock)
  data/p2/v1/source2   phone: real rate 25 fps, container claims 30 fps, time.txt
                       holds the true jittered frame times (ms) -- only a builder
                       that uses time.txt gets the duration right. Real-copy
                       quirks: the video decodes one frame more than time.txt
                       has lines, and the phone dropped 3 frames (a 0.16 s gap
                       in time.txt and in the video)
  data/p3/v1/source3   tablet with time.txt that repeats one value (two frames
                       stamped alike)
  data/p1/v1/source4   NIR camera: never listed
  data/p19/v2/source2  documented broken video (garbage bytes): excluded
  fold1.mat .. fold5.mat  variable `foldK`, 1xN double row of subject numbers
                          (fold4 and fold5 name subjects absent from the dummy)

Every RGB folder has wave.csv (header `Wave`, 60 Hz), gt_HR.csv and gt_SpO2.csv.
Deterministic; re-run to regenerate:

  ./run.sh python datasets/vipl_hr/make_dummy_data.py
"""

import os
import shutil

import numpy as np
import scipy.io
from scipy import interpolate

from codephys_jax import synthetic_video
from codephys_jax import video as video_lib

OUT = os.path.join(os.path.dirname(__file__), "dummy_data")
DATA = os.path.join(OUT, "data")
SECONDS = 4.0
PPG_HZ = 60.0
# key -> (true fps, container fps, write time.txt)
VIDEOS = {
    "p1/v1/source1": (30.0, 30.0, False),
    "p2/v1/source2": (25.0, 30.0, True),
    "p3/v1/source3": (30.0, 30.0, True),
}
FOLDS = {1: [1, 19], 2: [2], 3: [3], 4: [4, 7], 5: [5, 6]}
EXTRA_FRAME = ("p2/v1/source2",)  # decodes one frame more than time.txt lists
DROPPED = {"p2/v1/source2": (40, 43)}  # frames the phone dropped (gap in time.txt)
REPEATED = ("p3/v1/source3",)  # time.txt stamps two frames alike


def write_rgb(key: str, seed: int, true_fps: float, container_fps: float, with_time: bool) -> None:
  folder = os.path.join(DATA, key)
  os.makedirs(folder, exist_ok=True)
  subject = synthetic_video.make_subject(
      seed,
      duration_s=SECONDS + (1 / true_fps if key in EXTRA_FRAME else 0),
      fps=true_fps,
      width=160,
      height=120,
      noise_std=0.8,
  )
  kept = np.ones(subject.num_frames, dtype=bool)
  if key in DROPPED:
    kept[slice(*DROPPED[key])] = False
  frames = (f for f, k in zip(subject.frames(), kept) if k)
  video_lib.write_video(os.path.join(folder, "video.avi"), frames, container_fps, codec="MJPG")
  rng = np.random.default_rng(seed)
  frame_s = subject.timestamps.copy()
  if with_time:
    frame_s[1:] += rng.uniform(-0.003, 0.003, frame_s.size - 1)
    frame_ms = np.round(frame_s * 1000).astype(int)[kept]
    if key in EXTRA_FRAME:
      frame_ms = frame_ms[:-1]  # the last decoded frame has no line
    if key in REPEATED:
      frame_ms[frame_ms.size // 2 + 1] = frame_ms[frame_ms.size // 2]
    with open(os.path.join(folder, "time.txt"), "w") as f:
      f.write("\n".join(str(v) for v in frame_ms) + "\n")
  # The oximeter stream runs from the first frame at 60 Hz, a little past the end.
  ppg_s = np.arange(int((SECONDS + 0.1) * PPG_HZ)) / PPG_HZ
  wave = interpolate.CubicSpline(frame_s, subject.ppg)(ppg_s)
  with open(os.path.join(folder, "wave.csv"), "w") as f:
    f.write("Wave\n" + "\n".join(str(int(round(60 + 30 * w))) for w in wave) + "\n")
  with open(os.path.join(folder, "gt_HR.csv"), "w") as f:
    f.write("HR\n" + f"{round(subject.mean_hr)}\n" * int(SECONDS))
  with open(os.path.join(folder, "gt_SpO2.csv"), "w") as f:
    f.write("SpO2\n" + "98\n" * int(SECONDS))


def write_nir(key: str) -> None:
  folder = os.path.join(DATA, key)
  os.makedirs(folder, exist_ok=True)
  grey = [np.full((60, 80, 3), 90 + i, np.uint8) for i in range(10)]
  video_lib.write_video(os.path.join(folder, "video.avi"), grey, 30.0, codec="MJPG")
  with open(os.path.join(folder, "wave.csv"), "w") as f:
    f.write("Wave\n" + "60\n" * 20)


def write_broken(key: str) -> None:
  folder = os.path.join(DATA, key)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "video.avi"), "wb") as f:
    f.write(b"RIFF\x00\x00\x00\x00AVI truncated")
  with open(os.path.join(folder, "wave.csv"), "w") as f:
    f.write("Wave\n" + "60\n61\n" * 10)


def _fix_header(path: str) -> None:
  """Replaces the MAT header's creation date with fixed text: byte-identical reruns."""
  with open(path, "r+b") as f:
    f.write(b"MATLAB 5.0 MAT-file, written by make_dummy_data.py".ljust(116))


def main() -> None:
  shutil.rmtree(OUT, ignore_errors=True)
  for i, (key, (true_fps, container_fps, with_time)) in enumerate(VIDEOS.items()):
    write_rgb(key, 3000 + i, true_fps, container_fps, with_time)
  write_nir("p1/v1/source4")
  write_broken("p19/v2/source2")
  for k, subjects in FOLDS.items():
    path = os.path.join(OUT, f"fold{k}.mat")
    scipy.io.savemat(path, {f"fold{k}": np.array([subjects], dtype=np.float64)})
    _fix_header(path)
  print(f"wrote {len(VIDEOS)} RGB videos, 1 NIR, 1 broken and 5 folds under {OUT}")


if __name__ == "__main__":
  main()
