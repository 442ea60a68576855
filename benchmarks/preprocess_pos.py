"""Throughput and peak memory of preprocessing + POS on a 60 s 640x480 video.

  PYTHONPATH=. python benchmarks/preprocess_pos.py [--seconds 60] [--size 72]

Renders a synthetic face video (MJPG .avi, 30 fps) once into a temp folder, then
runs, in a fresh subprocess per measurement so peak RSS is that stage's own:
  decode      : decode every frame only (the floor set by the codec),
  end_to_end  : decode + face tracking + crop/resize + RGB trace + POS +
                post-processing + HR estimate, once per face detector / RGB ROI
                (Haar only where this OpenCV has it).
Each end-to-end child then (untimed) runs the whole-frame detector on every
10th frame for the detection rate. Prints a markdown table (frames per wall
second and per CPU second, peak RSS MiB, CPU-speed ratios to decode and to the
first end-to-end row) for benchmarks/RESULTS.md.
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


# (label, detector, rgb_roi, skin_mask) of the end-to-end variants.
VARIANTS = (
    ("Haar box, no skin mask", "haar", "box", False),
    ("Haar box + skin mask (old default)", "haar", "box", True),
    ("BlazeFace box, no skin mask", "blazeface", "box", False),
    ("BlazeFace box + skin mask", "blazeface", "box", True),
    ("BlazeFace landmarks, no skin mask", "blazeface", "landmarks", False),
    ("BlazeFace landmarks + skin mask", "blazeface", "landmarks", True),
)


def _stage(stage: str, path: str, size: int) -> dict:
  import numpy as np

  from codephys_jax import face, hr, preprocess, unsupervised
  from codephys_jax import signal as sig
  from codephys_jax import video as video_lib

  t0, c0 = time.perf_counter(), time.process_time()
  row = {"stage": stage}
  with video_lib.open_video(path) as src:
    if stage == "decode":
      n = sum(1 for _ in src)
    else:
      _, det, rgb_roi, skin = next(v for v in VARIANTS if v[0] == stage)
      cfg = preprocess.PreprocessConfig(size=size, detector=det, rgb_roi=rgb_roi, skin_mask=skin)
      out = preprocess.preprocess_video(src, cfg)
      n = out.num_source_frames
      bvp = unsupervised.extract_bvp("pos", out.rgb, out.fps)
      bpm = hr.estimate_hr(sig.postprocess(bvp, out.fps), out.fps)
      assert np.isfinite(bpm)
      row.update(valid=float(out.valid.mean()), hr_bpm=float(bpm))
  dt = time.perf_counter() - t0
  # CPU seconds (all threads): steadier than wall time when other jobs share the cores.
  row["cpu_s"] = time.process_time() - c0
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  if stage != "decode":
    with video_lib.open_video(path) as src:
      found = [
          bool(face.detect_faces(f, detector=det)) for i, (_, f) in enumerate(src) if i % 10 == 0
      ]
    row["detection_rate"] = float(np.mean(found))
  row.update(frames=n, seconds=dt, fps=n / dt, peak_rss_mib=peak_mib)
  return row


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
    import cv2

    from codephys_jax import face

    dets = face.available_detectors()
    stages = ["decode"] + [v[0] for v in VARIANTS if v[1] in dets]
    rows = []
    for stage in stages:
      res = subprocess.run(
          [sys.executable, __file__, "--stage", stage, "--video", path, "--size", str(args.size)],
          check=True,
          capture_output=True,
          text=True,
      )
      rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
  print(f"Video: {n} frames, 640x480, 30 fps, MJPG; crop {args.size}px; OpenCV {cv2.__version__}")
  print(
      f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
      f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end"
  )
  cbase, cfirst = (rows[0]["frames"] / rows[0]["cpu_s"], rows[1]["frames"] / rows[1]["cpu_s"])
  print(
      "| stage | detection rate | valid frames | frames/s (wall) | frames per CPU-s | "
      f"peak RSS (MiB) | CPU speed vs decode | CPU speed vs {rows[1]['stage']} |"
  )
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    rate = f"{r['detection_rate']:.2f}" if "detection_rate" in r else ""
    valid = f"{r['valid']:.3f}" if "valid" in r else ""
    cfps = r["frames"] / r["cpu_s"]
    print(
        f"| {r['stage']} | {rate} | {valid} | {r['fps']:.0f} | {cfps:.0f} | "
        f"{r['peak_rss_mib']:.0f} | {cfps / cbase:.2f}x | {cfps / cfirst:.2f}x |"
    )


if __name__ == "__main__":
  main()
