"""CPU time per call of each face-pipeline step, for each detector and RGB ROI.

  PYTHONPATH=. python benchmarks/face_ops.py

CPU seconds (time.process_time, all threads) rather than wall time, so the
numbers stay meaningful when other jobs share the cores. Frames: a synthetic
640x480 face (codephys_jax.synthetic_video). The tracker calls the detector's
local search once every ``detect_every`` (10) frames and the whole-frame search
only until the first face or after losing it; the RGB ROI step runs every frame.
"""

from __future__ import annotations

import time

import cv2

from codephys_jax import face
from codephys_jax.synthetic_video import make_subject


def _cpu_ms(fn, frames, n: int) -> float:
  c = time.process_time()
  for i in range(n):
    fn(frames[i % len(frames)])
  return (time.process_time() - c) / n * 1e3


def main() -> None:
  frames = list(make_subject(7, duration_s=0.4, fps=30.0, width=640, height=480).frames())
  print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; CPU ms per call")
  print("| step | CPU ms per call |")
  print("|---|---|")
  for det in face.available_detectors():
    box = face.detect_faces(frames[0], detector=det)[0]
    full = _cpu_ms(lambda f: face.detect_faces(f, detector=det), frames, 30)
    near = _cpu_ms(lambda f: face.detect_near(f, box, detector=det), frames, 60)
    print(f"| {det}: whole-frame detection | {full:.2f} |")
    print(f"| {det}: local detection near the tracked face | {near:.2f} |")
  box = face.FaceTracker().update(frames[0])
  steps = {
      "RGB ROI: landmarks, no skin mask": lambda f: face.landmark_mean_rgb(f, box.landmarks),
      "RGB ROI: landmarks + skin mask": lambda f: face.landmark_mean_rgb(
          f, box.landmarks, use_skin_mask=True
      ),
      "RGB ROI: box, no skin mask": lambda f: face.skin_mean_rgb(face.crop_square(f, box), None),
      "RGB ROI: box + skin mask": lambda f: face.skin_mean_rgb(
          c := face.crop_square(f, box), face.skin_mask(c)
      ),
  }
  for name, fn in steps.items():
    print(f"| {name} | {_cpu_ms(fn, frames, 300):.3f} |")


if __name__ == "__main__":
  main()
