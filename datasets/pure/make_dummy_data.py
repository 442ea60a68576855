"""Writes datasets/pure/dummy_data: a miniature PURE in the real layout.

Two sequences (01-01 train, 02-01 test) of rendered faces as `Image<ns>.png`
files plus `ii-jj.json` with `/FullPackage` (pulse oximeter stream at ~60 Hz)
and `/Image` (frame timestamps), nanosecond epochs with jitter as in the real
recordings. To stay commit-sized the dummy runs at 10 fps (the real data is
30 fps); the builder does not assume a rate. The quirks of real copies are
reproduced: repeated `/FullPackage` timestamps (both sequences), a 0.4 s gap in
the oximeter stream (both), and in 01-01 one extra frame after the oximeter's
last sample. Deterministic; re-run to regenerate:

  ./run.sh python datasets/pure/make_dummy_data.py
"""

import json
import os
import shutil

import cv2
import numpy as np
from scipy import interpolate

from codephys_jax import synthetic_video

OUT = os.path.join(os.path.dirname(__file__), "dummy_data")
SEQUENCES = ("01-01", "02-01")
EXTRA_FRAME = ("01-01",)  # sequences with a frame past the oximeter's end
GAP_S = (1.5, 1.9)  # oximeter samples missing in this span (s from the first frame)
SECONDS = 4.0
FPS = 10.0
PPG_HZ = 60.0
EPOCH_NS = 1392643993642815000  # a real-looking nanosecond epoch (Feb 2014)


def write_sequence(name: str, seed: int) -> None:
  extra = name in EXTRA_FRAME
  subject = synthetic_video.make_subject(
      seed,
      duration_s=SECONDS + (1 / FPS if extra else 0),
      fps=FPS,
      width=160,
      height=120,
      noise_std=0.0,
  )
  rng = np.random.default_rng(seed)
  n = subject.num_frames
  # Frame clock: nominal period with a few ms of jitter, strictly increasing.
  frame_s = np.arange(n) / FPS + rng.uniform(-0.004, 0.004, n)
  frame_s[0] = 0.0
  frame_ns = EPOCH_NS + seed * 10**12 + np.round(frame_s * 1e9).astype(np.int64)
  # The oximeter starts a little before the camera and stops a little after
  # its last labelled frame (before the extra one, where there is one).
  last = SECONDS - 1 / FPS
  ppg_s = np.arange(-0.05, last + 0.05, 1.0 / PPG_HZ)
  ppg_s = ppg_s + rng.uniform(-0.002, 0.002, ppg_s.size)
  ppg_s = ppg_s[(ppg_s < GAP_S[0]) | (ppg_s > GAP_S[1])]  # a logging gap
  spline = interpolate.CubicSpline(subject.timestamps, subject.ppg)
  wave = np.round(spline(ppg_s) * 40 + 80).astype(int)  # device units (~integers)
  ppg_ns = frame_ns[0] + np.round(ppg_s * 1e9).astype(np.int64)
  # Repeated timestamps: the logger stamps two consecutive samples alike.
  for i in (ppg_ns.size // 4, (3 * ppg_ns.size) // 4):
    ppg_ns[i + 1] = ppg_ns[i]

  folder = os.path.join(OUT, name)
  frame_dir = os.path.join(folder, name)
  os.makedirs(frame_dir, exist_ok=True)
  for ns, frame in zip(frame_ns, subject.frames()):
    cv2.imwrite(
        os.path.join(frame_dir, f"Image{ns}.png"),
        cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, 9],
    )
  hr = int(round(subject.mean_hr))
  doc = {
      "/FullPackage": [
          {
              "Timestamp": int(t),
              "Value": {
                  "waveform": int(w),
                  "pulseRate": hr,
                  "o2saturation": 98,
                  "signalStrength": 4,
              },
          }
          for t, w in zip(ppg_ns, wave)
      ],
      "/Image": [{"Timestamp": int(t)} for t in frame_ns],
  }
  with open(os.path.join(folder, f"{name}.json"), "w") as f:
    json.dump(doc, f)


def main() -> None:
  shutil.rmtree(OUT, ignore_errors=True)
  for i, name in enumerate(SEQUENCES):
    write_sequence(name, 2000 + i)
  print(f"wrote {len(SEQUENCES)} sequences under {OUT}")


if __name__ == "__main__":
  main()
