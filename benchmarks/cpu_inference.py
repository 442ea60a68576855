"""CPU inference speed of a learned rPPG model on a user's video, routes side by side.

  python benchmarks/cpu_inference.py [--seconds=20] [--size=72] [--json=PATH]

A synthetic 640x480 MJPG face video (`synthetic_video`) is preprocessed once
(decode + face tracking + 72x72 crops: `preprocess.preprocess_video`, timed),
then the PhysNet regression model at the paper's widths (16/32/64, 64 output
channels, 8x8 grid; random weights: speed does not depend on their values)
turns the crops into a whole-video waveform with `inference.predict_video`
(160-frame clips, overlap-add) by several routes, each timed after one warm-up
call (compilation excluded, reported separately):

  jit b1 / b4        jax.jit of inference.rppg_fn (training's and eval's inference), 1 or 4 clips per call;
  exported b4        the jax.export artefact training writes (export.load_exported);
  hop 120 / 160      clips overlapping by 40 frames / not at all (default hop: 80);
  bf16 b4            weights and activations in bfloat16.

model frames/s = video frames / model time; end to end frames/s = video frames /
(preprocessing + model time). The compiled model's FLOPs (XLA cost analysis)
give the achieved GFLOP/s, i.e. how close a route is to what the cores can do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from codephys_jax import export as export_lib  # noqa: E402
from codephys_jax import inference  # noqa: E402
from codephys_jax import models  # noqa: E402
from codephys_jax import preprocess  # noqa: E402
from codephys_jax import synthetic_video  # noqa: E402
from codephys_jax import video as video_lib  # noqa: E402
from codephys_jax.stages import base as stage_base  # noqa: E402

CLIP = 160
BACKBONE = dict(base_width=16, output_channels=64, spatial_out=8)


def _frames(seconds: float, size: int, tmp: str) -> tuple[np.ndarray, float]:
  path = os.path.join(tmp, "face.avi")
  subject = synthetic_video.make_subject(7, duration_s=seconds, fps=30.0, width=640, height=480)
  video_lib.write_video(path, subject.frames(), 30.0, codec="MJPG")
  t0 = time.perf_counter()
  with video_lib.open_video(path) as src:
    out = preprocess.preprocess_video(src, preprocess.PreprocessConfig(size=size))
  return np.asarray(out.frames), time.perf_counter() - t0


def _flops(fn, batch: int, size: int) -> float | None:
  try:
    spec = jax.ShapeDtypeStruct((batch, CLIP, size, size, 3), np.uint8)
    cost = jax.jit(fn).lower(spec).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) or None
  except Exception:  # cost analysis is best effort; timings do not depend on it
    return None


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--seconds", type=float, default=20.0)
  ap.add_argument("--size", type=int, default=72)
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--json", default="")
  args = ap.parse_args()
  size = args.size
  with tempfile.TemporaryDirectory() as tmp:
    frames, t_pre = _frames(args.seconds, size, tmp)
    n = len(frames)
    model = models.get_model("physnet_regression", backbone="physnet", backbone_kwargs=BACKBONE)
    x0 = jnp.zeros((1, CLIP, size, size, 3), jnp.float32)
    variables = jax.jit(lambda r: model.init(r, x0, train=False))(jax.random.key(0))
    variables = jax.tree.map(np.asarray, dict(variables))
    rppg = inference.rppg_fn(model, "standardized")  # training's and eval's inference

    def bf16_fn(v, clips):
      v16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), v)
      x = stage_base.normalize_frames(clips, "standardized").astype(jnp.bfloat16)
      return model.apply(v16, x, train=False)["rppg"].astype(jnp.float32)

    export_path = os.path.join(tmp, "model.jax")
    export_lib.export_inference(rppg, variables, (CLIP, size, size, 3), np.uint8, export_path)
    exported = export_lib.load_exported(export_path)
    jit_f32 = jax.jit(rppg)
    jit_bf16 = jax.jit(bf16_fn)
    flops_per_clip = _flops(lambda c: rppg(variables, c), 1, size)

    routes = [
        ("jit b1, hop 80", lambda c: jit_f32(variables, c), 1, CLIP // 2),
        ("jit b4, hop 80", lambda c: jit_f32(variables, c), 4, CLIP // 2),
        ("exported b4, hop 80", exported, 4, CLIP // 2),
        ("bf16 b4, hop 80", lambda c: jit_bf16(variables, c), 4, CLIP // 2),
        ("jit b4, hop 120", lambda c: jit_f32(variables, c), 4, 3 * CLIP // 4),
        ("jit b4, hop 160", lambda c: jit_f32(variables, c), 4, CLIP),
    ]
    rows = []
    for name, fn, batch, hop in routes:
      clip_fn = lambda c, fn=fn: np.asarray(fn(c))  # noqa: E731
      t0 = time.perf_counter()
      clip_fn(np.zeros((batch, CLIP, size, size, 3), np.uint8))
      compile_s = time.perf_counter() - t0
      best = None
      for _ in range(args.repeats):
        t0 = time.perf_counter()
        wave = inference.predict_video(frames, clip_fn, clip_length=CLIP, hop=hop, batch_size=batch)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
      assert wave.shape == (n,) and np.all(np.isfinite(wave))
      clips = len(inference.clip_starts(n, CLIP, hop))
      row = {
          "route": name,
          "batch": batch,
          "hop": hop,
          "clips": clips,
          "first_call_s": compile_s,
          "model_s": best,
          "model_fps": n / best,
          "end_to_end_fps": n / (t_pre + best),
      }
      if flops_per_clip:
        row["gflops_per_s"] = flops_per_clip * clips / best / 1e9
      rows.append(row)
      print(f"  {name}: {row['model_fps']:.0f} model frames/s", flush=True)
  print(
      f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
      f"load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}"
  )
  print(
      f"Video: {n} frames ({args.seconds:.0f} s, 640x480 MJPG), {size}x{size} crops; "
      f"preprocessing {t_pre:.2f} s = {n / t_pre:.0f} frames/s"
  )
  if flops_per_clip:
    print(
        f"Model: {flops_per_clip / 1e9:.1f} GFLOP per {CLIP}-frame clip "
        f"({flops_per_clip / CLIP / 1e9:.3f} GFLOP per clip frame)"
    )
  print(
      "| route | clips | first call (s) | model time (s) | model frames/s | "
      "end to end frames/s | GFLOP/s |"
  )
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    g = f"{r['gflops_per_s']:.0f}" if "gflops_per_s" in r else "-"
    print(
        f"| {r['route']} | {r['clips']} | {r['first_call_s']:.1f} | {r['model_s']:.2f} | "
        f"{r['model_fps']:.0f} | {r['end_to_end_fps']:.0f} | {g} |"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump(
          {"frames": n, "preprocess_s": t_pre, "flops_per_clip": flops_per_clip, "rows": rows},
          f,
          indent=1,
      )


if __name__ == "__main__":
  main()
