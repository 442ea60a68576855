"""Throughput and peak memory of preprocessing + POS on a 60 s 640x480 video.

  ./run.sh python benchmarks/preprocess_pos.py [--seconds 60] [--size 72]

Renders a synthetic face video (MJPG .avi, 30 fps) once into a temp folder, then
runs, in a fresh subprocess per measurement so peak RSS is that stage's own:
  decode      : decode every frame only (the floor set by the codec),
  preprocess  : decode + Haar face tracking + crop/resize + skin-mask RGB trace,
  end_to_end  : preprocess + POS + post-processing + HR estimate.
Prints a markdown table (frames/s, peak RSS MiB, ratio to decode) for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time


def _render(path: str, seconds: float) -> int:
  from codephys_jax import synthetic_video
  from codephys_jax import video as video_lib

  subject = synthetic_video.make_subject(7, duration_s=seconds, fps=30.0, width=640, height=480)
  video_lib.write_video(path, subject.frames(), 30.0, codec="MJPG")
  return subject.num_frames


def _stage(stage: str, path: str, size: int) -> dict:
  import numpy as np

  from codephys_jax import hr, preprocess, unsupervised
  from codephys_jax import signal as sig
  from codephys_jax import video as video_lib

  t0 = time.perf_counter()
  with video_lib.open_video(path) as src:
    if stage == "decode":
      n = sum(1 for _ in src)
    else:
      out = preprocess.preprocess_video(src, preprocess.PreprocessConfig(size=size))
      n = out.num_source_frames
      if stage == "end_to_end":
        bvp = unsupervised.extract_bvp("pos", out.rgb, out.fps)
        bpm = hr.estimate_hr(sig.postprocess(bvp, out.fps), out.fps)
        assert np.isfinite(bpm)
  dt = time.perf_counter() - t0
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return {"stage": stage, "frames": n, "seconds": dt, "fps": n / dt, "peak_rss_mib": peak_mib}


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--seconds", type=float, default=60.0)
  ap.add_argument("--size", type=int, default=72)
  ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)
  ap.add_argument("--video", default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.stage:  # child process
    print(json.dumps(_stage(args.stage, args.video, args.size)))
    return
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "vid.avi")
    n = _render(path, args.seconds)
    rows = []
    for stage in ("decode", "preprocess", "end_to_end"):
      res = subprocess.run(
          [sys.executable, __file__, "--stage", stage, "--video", path, "--size", str(args.size)],
          check=True, capture_output=True, text=True,
      )
      rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
  base = rows[0]["fps"]
  print(f"Video: {n} frames, 640x480, 30 fps, MJPG; crop {args.size}px")
  print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}")
  print("| stage | frames/s | time (s) | peak RSS (MiB) | speed vs decode |")
  print("|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['stage']} | {r['fps']:.0f} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
          f"{r['fps'] / base:.2f}x |")


if __name__ == "__main__":
  main()
