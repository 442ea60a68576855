"""POS heart-rate error of each face detector / RGB ROI on hard synthetic videos.

  PYTHONPATH=. python benchmarks/roi_hard.py [--subjects 8] [--seconds 20]

Renders synthetic subjects (codephys_jax.synthetic_video, 320x240, 30 fps) under
conditions that hurt POS, built from the renderer and codephys_jax.degradations:

  clean          default rendering.
  low_amplitude  pulse amplitude 0.2 % peak-to-peak (default draw: 0.5-1 %).
  flicker        illumination flicker inside the HR band (0.75-2.5 Hz; the
                 degradation's seed is chosen so) plus brightness steps, severity 3.
  fast_motion    rendered head motion x4 plus the head_motion degradation, severity 4.
  codec          lossy MPEG-4 at a low emulated bitrate (video_codec, severity 4).
  jpeg           per-frame JPEG at quality 8 (jpeg, severity 5).

Each degraded video is held in memory once and sent through
codephys_jax.preprocess.preprocess_video once per variant (detector x RGB ROI x
skin mask); POS, the evaluation post-processing and the FFT HR follow. The
reference HR is the same post-processing and FFT of the subject's PPG label.
Prints per-condition MAE (bpm) per variant, the MAE over the non-clean
conditions, and the detection rate (fraction of sampled frames where the
detector finds a face on the whole frame) per condition.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np

from codephys_jax import degradations as deg_lib
from codephys_jax import face, hr, preprocess, synthetic_video, unsupervised
from codephys_jax import signal as sig
from codephys_jax.video import FrameIterSource

CONDITIONS = ("clean", "low_amplitude", "flicker", "fast_motion", "codec", "jpeg")
_BAND = (0.75, 2.5)


def _in_band_flicker_seed(start: int) -> int:
  """First degradation seed from ``start`` whose illumination flicker lies in the HR band."""
  seed = start
  while True:
    setup = np.random.default_rng([seed & 0xFFFFFFFF, deg_lib._key("illumination"), 7])
    if _BAND[0] <= setup.uniform(0.5, 4.0) <= _BAND[1]:
      return seed
    seed += 1


def _condition(name: str, subject_seed: int, seconds: float):
  """(subject, per-frame degradation or None) of one condition."""
  render = {}
  d = None
  if name == "low_amplitude":
    render["pulse_amplitude"] = 0.002
  elif name == "flicker":
    d = deg_lib.make_degradation("illumination", 3, seed=_in_band_flicker_seed(1000 * subject_seed))
  elif name == "fast_motion":
    render["motion"] = 4.0
    d = deg_lib.make_degradation("head_motion", 4, seed=subject_seed)
  elif name == "codec":
    d = deg_lib.make_degradation("video_codec", 4, seed=subject_seed)
  elif name == "jpeg":
    d = deg_lib.make_degradation("jpeg", 5, seed=subject_seed)
  subject = synthetic_video.make_subject(
      subject_seed, duration_s=seconds, fps=30.0, width=320, height=240, **render
  )
  return subject, d


def variants() -> dict[str, preprocess.PreprocessConfig]:
  """Detector/ROI variants to compare; Haar only where this OpenCV has it."""
  out = {}
  dets = face.available_detectors()
  for det in ("haar", "blazeface"):
    if det not in dets:
      continue
    out[f"{det} box, no skin mask"] = preprocess.PreprocessConfig(
        detector=det, rgb_roi="box", skin_mask=False
    )
    out[f"{det} box + skin mask"] = preprocess.PreprocessConfig(
        detector=det, rgb_roi="box", skin_mask=True
    )
    if face.DETECTORS[det].has_landmarks:
      out[f"{det} landmarks, no skin mask"] = preprocess.PreprocessConfig(
          detector=det, rgb_roi="landmarks", skin_mask=False
      )
      out[f"{det} landmarks + skin mask"] = preprocess.PreprocessConfig(
          detector=det, rgb_roi="landmarks", skin_mask=True
      )
  return out


def _hr(x: np.ndarray, fps: float) -> float:
  return hr.estimate_hr(
      sig.postprocess(x, fps, low_hz=_BAND[0], high_hz=_BAND[1]),
      fps,
      low_hz=_BAND[0],
      high_hz=_BAND[1],
  )


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--subjects", type=int, default=8)
  ap.add_argument("--seconds", type=float, default=20.0)
  ap.add_argument(
      "--detect-sample",
      type=int,
      default=15,
      help="run the whole-frame detector on every this many frames for the rate",
  )
  args = ap.parse_args()
  cfgs = variants()
  dets = [d for d in ("haar", "blazeface") if d in face.available_detectors()]
  err = {(c, v): [] for c in CONDITIONS for v in cfgs}
  rate = {(c, d): [] for c in CONDITIONS for d in dets}
  t_start = time.perf_counter()
  for s in range(args.subjects):
    for cond in CONDITIONS:
      subject, d = _condition(cond, s, args.seconds)
      frames = [f if d is None else d(f, i) for i, f in enumerate(subject.frames())]
      ref = _hr(subject.ppg.astype(np.float64), subject.fps)
      for det in dets:
        found = [bool(face.detect_faces(f, detector=det)) for f in frames[:: args.detect_sample]]
        rate[(cond, det)].append(np.mean(found))
      for name, cfg in cfgs.items():
        src = FrameIterSource(
            lambda: iter(frames), subject.fps, size=(subject.width, subject.height)
        )
        try:
          out = preprocess.preprocess_video(src, cfg)
          bvp = unsupervised.extract_bvp("pos", out.rgb, out.fps)
          est = _hr(bvp, out.fps)
        except face.NoFaceError:
          est = float("nan")  # counted as a failure below
        err[(cond, name)].append(abs(est - ref) if np.isfinite(est) else float("nan"))
    print(
        f"subject {s + 1}/{args.subjects} done, {time.perf_counter() - t_start:.0f} s", flush=True
    )

  print(
      f"\n{args.subjects} subjects x {args.seconds:.0f} s, 320x240, 30 fps; OpenCV "
      f"{cv2.__version__}; {platform.machine()}, {os.cpu_count()} cores; "
      f"{time.perf_counter() - t_start:.0f} s"
  )
  hard = [c for c in CONDITIONS if c != "clean"]
  print("\nPOS MAE (bpm) per condition; failures (no face) counted in the last column")
  print("| variant | " + " | ".join(CONDITIONS) + " | mean over non-clean | failed videos |")
  print("|---" * (len(CONDITIONS) + 3) + "|")
  for v in cfgs:
    maes = [np.nanmean(err[(c, v)]) for c in CONDITIONS]
    hard_mae = np.nanmean(np.concatenate([err[(c, v)] for c in hard]))
    failed = int(sum(np.isnan(err[(c, v)]).sum() for c in CONDITIONS))
    print(
        f"| {v} | " + " | ".join(f"{m:.1f}" for m in maes) + f" | **{hard_mae:.1f}** | "
        f"{failed} |"
    )
  print("\nDetection rate (whole-frame detector, every " f"{args.detect_sample}th frame)")
  print("| detector | " + " | ".join(CONDITIONS) + " |")
  print("|---" * (len(CONDITIONS) + 1) + "|")
  for det in dets:
    print(f"| {det} | " + " | ".join(f"{np.mean(rate[(c, det)]):.2f}" for c in CONDITIONS) + " |")


if __name__ == "__main__":
  main()
