"""Peak memory of preparing one video vs its length: it stays nearly flat.

  ./run.sh python benchmarks/prepare_memory.py [--lengths 20 60 180] [--size 128]

For each length, writes a synthetic 640x480 MJPG face video (30 fps) with a
per-frame PPG as a one-subject UBFC-rPPG tree (`subject42/vid.avi` +
`ground_truth.txt`), then measures, each in a fresh subprocess so that
`ru_maxrss` is that step's own peak:

  import   : the interpreter with the builder modules imported (the floor),
  example  : `alignment.build_example` on the item, i.e. what one preparation
             worker does (streaming decode, Haar tracking, crops, skin RGB,
             label alignment, reference HR),
  prepare  : `data.load_builder` of the whole one-subject tree in-process
             (CODEPHYS_PREP_WORKERS=1): the example plus TFDS serialisation and
             the array_record writes (the subject is in `test` and `full`, so it
             is prepared twice, one after the other).

Raw frames are never held: only the uint8 crops (frames x size x size x 3) grow
with the length, and they are reported separately (`crops MiB`) next to the
peak minus the crops. The `prepare` column grows faster than the crops because
TFDS holds a few copies of each example while encoding and serialising it, and
its writer's shuffler keeps the serialised examples of a split in memory up to
1 GB (`tfds.core.shuffle.MAX_MEM_BUFFER_SIZE`) before spilling them to disk, so
for a whole dataset that part is bounded by ~1 GB, not by the dataset's size. Prints a markdown table for benchmarks/RESULTS.md.
The first 20 s of frames are rendered once and repeated to make the longer
videos (rendering 640x480 faces is the slow part, and memory does not care).
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

FPS = 30.0
WIDTH, HEIGHT = 640, 480
RENDER_S = 20.0


def _write_tree(root: str, seconds: float, frames: list, ppg) -> int:
  import numpy as np

  from codephys_jax import video as video_lib

  folder = os.path.join(root, "subject42")
  os.makedirs(folder, exist_ok=True)
  n = int(round(seconds * FPS))
  video_lib.write_video(
      os.path.join(folder, "vid.avi"),
      (frames[i % len(frames)] for i in range(n)),
      FPS,
      codec="MJPG",
  )
  wave = np.resize(np.asarray(ppg, np.float64), n)
  times = np.arange(n) / FPS
  with open(os.path.join(folder, "ground_truth.txt"), "w") as f:
    f.write(" ".join(f"{v:.6e}" for v in wave) + "\n")
    f.write(" ".join("70" for _ in range(n)) + "\n")
    f.write(" ".join(f"{v:.6e}" for v in times) + "\n")
  return n


def _child(step: str, tree: str, size: int, data_dir: str) -> dict:
  from codephys_jax import alignment
  from codephys_jax import data as data_lib
  from codephys_jax import preprocess as preprocess_lib
  from codephys_jax import rppg_builder
  from codephys_jax._builders import ubfc_rppg as ubfc

  t0 = time.perf_counter()
  frames_out = 0
  if step == "example":
    item = rppg_builder.Item(
        key="subject42", subject_id="42", payload={"dir": os.path.join(tree, "subject42")}
    )
    source, labels = ubfc.UbfcRppg.read_item(item)
    with source:
      ex = alignment.build_example(
          item.key, item.subject_id, source, labels, preprocess_lib.PreprocessConfig(size=size)
      )
    frames_out = len(ex["frames"])
  elif step == "prepare":
    builder = data_lib.load_builder(
        "ubfc_rppg", data_dir=data_dir, manual_dir=tree, preprocess={"size": size}
    )
    frames_out = len(data_lib.VideoSource(builder, "full")[0]["frames"])
  seconds = time.perf_counter() - t0
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
  return {"step": step, "peak_rss_mib": peak, "seconds": seconds, "frames_out": frames_out}


def _run_child(step: str, tree: str, size: int, data_dir: str) -> dict:
  env = dict(os.environ, CODEPHYS_PREP_WORKERS="1", TF_CPP_MIN_LOG_LEVEL="2")
  res = subprocess.run(
      [
          sys.executable,
          __file__,
          "--step",
          step,
          "--tree",
          tree,
          "--size",
          str(size),
          "--data_dir",
          data_dir,
      ],
      check=True,
      capture_output=True,
      text=True,
      env=env,
  )
  return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--lengths", type=float, nargs="+", default=[20.0, 60.0, 180.0])
  ap.add_argument("--size", type=int, default=128)
  ap.add_argument("--step", default=None, help=argparse.SUPPRESS)
  ap.add_argument("--tree", default=None, help=argparse.SUPPRESS)
  ap.add_argument("--data_dir", default=None, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.step:  # child process
    print(json.dumps(_child(args.step, args.tree, args.size, args.data_dir)))
    return

  from codephys_jax import synthetic_video

  subject = synthetic_video.make_subject(
      7, duration_s=RENDER_S, fps=FPS, width=WIDTH, height=HEIGHT
  )
  frames = list(subject.frames())
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    floor = _run_child("import", tmp, args.size, tmp)["peak_rss_mib"]
    for seconds in args.lengths:
      tree = os.path.join(tmp, f"raw_{seconds:g}")
      n = _write_tree(tree, seconds, frames, subject.ppg)
      video_mib = os.path.getsize(os.path.join(tree, "subject42", "vid.avi")) / 2**20
      example = _run_child("example", tree, args.size, os.path.join(tmp, "unused"))
      prepare = _run_child("prepare", tree, args.size, os.path.join(tmp, f"tfds_{seconds:g}"))
      crops_mib = example["frames_out"] * args.size**2 * 3 / 2**20
      rows.append((seconds, n, video_mib, crops_mib, example, prepare))
      print(
          f"  {seconds:g} s done ({example['seconds']:.0f} s + {prepare['seconds']:.0f} s)",
          file=sys.stderr,
          flush=True,
      )

  print(
      f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
      f"{platform.processor() or platform.platform()}, Python {platform.python_version()}"
  )
  print(
      f"Video: synthetic face, {WIDTH}x{HEIGHT}, {FPS:g} fps, MJPG; crops {args.size}x"
      f"{args.size} uint8; import-only floor {floor:.0f} MiB\n"
  )
  print(
      "| length (s) | frames | video file MiB | crops MiB | example peak MiB "
      "| example peak - crops | prepare peak MiB | prepare peak - crops | example s |"
  )
  print("|---|---|---|---|---|---|---|---|---|")
  for seconds, n, video_mib, crops_mib, ex, prep in rows:
    print(
        f"| {seconds:g} | {n} | {video_mib:.0f} | {crops_mib:.0f} | "
        f"{ex['peak_rss_mib']:.0f} | {ex['peak_rss_mib'] - crops_mib:.0f} | "
        f"{prep['peak_rss_mib']:.0f} | {prep['peak_rss_mib'] - crops_mib:.0f} | "
        f"{ex['seconds']:.1f} |"
    )
  # A whole raw video held as float32 would need frames x W x H x 3 x 4 bytes.
  last = rows[-1]
  print(
      f"\n(For scale: the {last[0]:g} s raw video as float32 would take "
      f"{last[1] * WIDTH * HEIGHT * 3 * 4 / 2**30:.1f} GiB.)"
  )


if __name__ == "__main__":
  main()
