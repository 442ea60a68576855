"""Step time of Stage I, Stage II and the PhysNet baseline against a PyTorch PhysNet, side by side.

  python benchmarks/gpu_step.py [--sizes=72,128] [--frames=160] [--batch=4] [--steps=20]
      [--stages=codebook,codephys,physnet] [--pipelines=device,host] [--bf16]
      [--torch=auto|off] [--json=PATH] [--markdown=PATH]

Every JAX stage is built by `train_lib.setup_stage` from the paper config
(`configs/paper.py`: PhysNet widths 16/32/64, 64 output channels, 8x8 grid,
AdamW, the paper's augmentations) with `--sizes` x `--sizes` crops, `--frames`
frames per clip and batch `--batch`, on synthetic in-memory videos (random
frames, a sine PPG: step time does not depend on the pixel values). Stage II
uses a random Stage I. Measured per (size, stage):

  resident   median ms of the jitted train step, the same batch already on the
             device, synchronised after every step (what the PyTorch column is);
  end to end ms per step of a loop that takes every batch from the input path
             (`--pipelines`: 'device' = codephys_jax.device_input, 'host' = grain +
             NumPy) without per-step sync, as trainer.train_loop runs;
  busy       resident / end to end: the fraction of the loop the device computes;
  peak       the device allocator's peak bytes (`memory_stats`, cumulative over
             the process: sizes run in increasing order), None on CPU.

The PyTorch column (benchmarks/physnet_torch.py, rPPG-Toolbox layout, 0.77M
parameters, Adam, negative Pearson, batch on the device, cudnn.benchmark) is
skipped when torch is not installed or with --torch=off. `--bf16` adds rows
with bfloat16 compute: JAX with `jax_default_matmul_precision=bfloat16`
(convolutions and matmuls in bf16, parameters float32), PyTorch with autocast.
Ratios are JAX / PyTorch step time (target <= 1.2).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (_REPO, os.path.join(_REPO, "benchmarks")):
  if _p not in sys.path:
    sys.path.insert(0, _p)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import physnet_torch  # noqa: E402
from codephys_jax import models  # noqa: E402
from codephys_jax import train_lib  # noqa: E402
from codephys_jax import trainer  # noqa: E402
from codephys_jax.stages import codebook as codebook_stage  # noqa: E402
from configs import paper  # noqa: E402

_SIZES = flags.DEFINE_list("sizes", ["72", "128"], "Square crop sizes (px).")
_FRAMES = flags.DEFINE_integer("frames", 160, "Frames per clip.")
_BATCH = flags.DEFINE_integer("batch", 4, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per measurement.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps before each measurement.")
_STAGES = flags.DEFINE_list("stages", ["codebook", "codephys", "physnet"], "JAX stages.")
_PIPELINES = flags.DEFINE_list("pipelines", ["device"], "Input paths for the end-to-end column.")
_BF16 = flags.DEFINE_bool("bf16", False, "Also time bfloat16 compute.")
_TORCH = flags.DEFINE_enum("torch", "auto", ["auto", "off"], "PyTorch reference column.")
_WIDTH = flags.DEFINE_integer("width", 16, "PhysNet base width (16 = the paper's).")
_VIDEOS = flags.DEFINE_integer("videos", 4, "Synthetic training videos.")
_VIDEO_FRAMES = flags.DEFINE_integer("video_frames", 600, "Frames per synthetic video.")
_JSON = flags.DEFINE_string("json", "", "Write all results as JSON here.")
_MARKDOWN = flags.DEFINE_string("markdown", "", "Write the table as markdown here.")


# ------------------------------------------------------------- synthetic data


class MemoryBuilder:
  """The parts of a prepared TFDS builder that `data.VideoSource` reads, in memory."""

  name = "synthetic_memory"

  def __init__(self, *, num_videos: int, num_frames: int, size: int, fps: float = 30.0):
    rng = np.random.default_rng(0)
    t = np.arange(num_frames) / fps
    self._videos = [
        {
            "frames": rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8),
            "ppg": np.sin(2 * np.pi * (1.0 + 0.1 * i) * t).astype(np.float32),
            "valid": np.ones(num_frames, bool),
            "fps": np.float32(fps),
            "video_id": f"v{i}",
            "subject_id": f"s{i}",
        }
        for i in range(num_videos)
    ]

    class _Info:
      splits = {"train": None}

    self.info = _Info()

  def as_data_source(self, split: str):
    del split
    return self._videos


def config_for(size: int, frames: int, batch: int, width: int, pipeline: str):
  c = paper.paper_config(
      "synthetic_rppg",
      train_split="train",
      eval_split="train",
      compare_splits=None,
      num_steps=1000,
      eval_every=1000,
  )
  c.preprocess.size = size
  c.clip_length = frames
  c.input_pipeline = pipeline
  for stage in ("codebook", "codephys", "physnet"):
    c[stage].batch_size = batch
    c[stage].clip_stride = frames // 2
  for stage in ("codephys", "physnet"):
    c[stage].model.backbone_kwargs.base_width = width
    c[stage].model.backbone_kwargs.output_channels = 4 * width
  return c


def _random_stage1(config):
  model = codebook_stage.make_model(config)
  ppg = np.zeros((1, config.clip_length), np.float32)
  variables = jax.jit(lambda r: model.init(r, ppg, train=False))(jax.random.key(0))
  return trainer.fetch(models.stage1_subtrees(dict(variables))), config.to_dict()


# ------------------------------------------------------------------ measuring


def _peak_bytes() -> int | None:
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def measure_jax(
    configs: dict[str, Any], builder, stage: str, *, steps: int, warmup: int, bf16: bool
) -> list[dict[str, Any]]:
  """One compiled step per (stage, precision); an end-to-end loop per input pipeline."""
  mesh = trainer.make_mesh()
  first_config = next(iter(configs.values()))
  stage1 = _random_stage1(first_config) if stage == "codephys" else None
  precision = "bfloat16" if bf16 else None
  rows = []
  with jax.default_matmul_precision(precision):
    setup = train_lib.setup_stage(first_config, builder, mesh, stage, stage1=stage1)
    step_fn = trainer.make_train_step(setup.loss_fn, mesh=mesh, post_update=setup.post_update)
    resident = trainer.shard_batch(mesh, next(iter(setup.make_iterator(0))))
    t0 = time.perf_counter()
    state, metrics = step_fn(setup.state, resident)
    jax.block_until_ready((state, metrics))
    first = time.perf_counter() - t0
    for _ in range(warmup):
      state, metrics = step_fn(state, resident)
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
      t0 = time.perf_counter()
      state, metrics = step_fn(state, resident)
      jax.block_until_ready((state, metrics))
      times.append(time.perf_counter() - t0)
    resident_ms = 1e3 * statistics.median(times)
    for pipeline, config in configs.items():
      # Same shapes and shardings: the compiled step is reused; only the input differs.
      make = (
          setup.make_iterator
          if config is first_config
          else train_lib.setup_stage(config, builder, mesh, stage, stage1=stage1).make_iterator
      )
      batches = iter(make(0))
      for _ in range(warmup):
        state, metrics = step_fn(state, trainer.shard_batch(mesh, next(batches)))
      jax.block_until_ready(state)
      t0 = time.perf_counter()
      for _ in range(steps):
        state, metrics = step_fn(state, trainer.shard_batch(mesh, next(batches)))
      jax.block_until_ready((state, metrics))
      e2e_ms = 1e3 * (time.perf_counter() - t0) / steps
      trainer.check_finite(trainer.fetch(metrics), steps)
      rows.append(
          {
              "input": pipeline,
              "resident_ms": resident_ms,
              "e2e_ms": e2e_ms,
              "busy": min(1.0, resident_ms / e2e_ms),
              "first_step_s": first,
              "params": trainer.num_params(state.params),
              "peak_bytes": _peak_bytes(),
          }
      )
  return rows


def _mib(b):
  return "-" if b is None else f"{b / 2**20:.0f}"


def format_table(rows: list[dict[str, Any]]) -> str:
  lines = [
      "| size | model | framework | precision | input | params | step, batch on device "
      "(ms) | step, end to end (ms) | device busy | vs PyTorch | first step (s) | "
      "peak memory (MiB) |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
    e2e = "-" if r.get("e2e_ms") is None else f"{r['e2e_ms']:.1f}"
    busy = "-" if r.get("busy") is None else f"{100 * r['busy']:.0f}%"
    lines.append(
        f"| {r['size']} | {r['model']} | {r['framework']} | {r['precision']} | "
        f"{r.get('input', '-')} | {r['params'] / 1e6:.2f}M | {r['resident_ms']:.1f} | {e2e} | "
        f"{busy} | {ratio} | {r['first_step_s']:.1f} | {_mib(r.get('peak_bytes'))} |"
    )
  return "\n".join(lines)


def main(argv):
  del argv
  devices = jax.devices()
  print(
      f"jax {jax.__version__}, backend {jax.default_backend()}, "
      f"{len(devices)} x {devices[0].device_kind}",
      flush=True,
  )
  use_torch = _TORCH.value == "auto" and physnet_torch.available()
  if _TORCH.value == "auto" and not use_torch:
    print("torch is not installed: the PyTorch column is skipped", flush=True)
  precisions = ["float32"] + (["bfloat16"] if _BF16.value else [])
  rows = []
  for size in sorted(int(s) for s in _SIZES.value):
    builder = MemoryBuilder(num_videos=_VIDEOS.value, num_frames=_VIDEO_FRAMES.value, size=size)
    for precision in precisions:
      bf16 = precision == "bfloat16"
      ref = None
      if use_torch:
        t = physnet_torch.benchmark(
            size=size,
            frames=_FRAMES.value,
            batch=_BATCH.value,
            steps=_STEPS.value,
            warmup=_WARMUP.value,
            bf16=bf16,
            width=_WIDTH.value,
        )
        ref = t["ms"]
        rows.append(
            {
                "size": size,
                "model": "PhysNet (rPPG-Toolbox)",
                "framework": f"torch {t['torch']}",
                "precision": precision,
                "input": "-",
                "params": t["params"],
                "resident_ms": t["ms"],
                "first_step_s": t["first_step_s"],
                "peak_bytes": t["peak_bytes"],
                "ratio": 1.0,
            }
        )
        print(f"  {size}px torch {precision}: {t['ms']:.1f} ms", flush=True)
      for stage in _STAGES.value:
        if bf16 and stage == "codebook":
          continue  # a 1-D model of 87k parameters: bf16 is not what its step time needs
        configs = {
            p: config_for(size, _FRAMES.value, _BATCH.value, _WIDTH.value, p)
            for p in _PIPELINES.value
        }
        name = {
            "codebook": "Stage I (PPG codebook)",
            "codephys": "Stage II (CodePhys)",
            "physnet": "PhysNet baseline",
        }[stage]
        for r in measure_jax(
            configs, builder, stage, steps=_STEPS.value, warmup=_WARMUP.value, bf16=bf16
        ):
          r.update(
              size=size,
              model=name,
              stage=stage,
              framework=f"jax {jax.__version__}",
              precision=precision,
              ratio=None if ref is None or stage == "codebook" else r["resident_ms"] / ref,
          )
          rows.append(r)
          print(
              f"  {size}px {stage} {r['input']} {precision}: {r['resident_ms']:.1f} ms "
              f"resident, {r['e2e_ms']:.1f} ms end to end",
              flush=True,
          )
  table = format_table(rows)
  print(table)
  if _MARKDOWN.value:
    with open(_MARKDOWN.value, "w") as f:
      f.write(table + "\n")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(
          {
              "jax": jax.__version__,
              "backend": jax.default_backend(),
              "device": devices[0].device_kind,
              "frames": _FRAMES.value,
              "batch": _BATCH.value,
              "steps": _STEPS.value,
              "rows": rows,
          },
          f,
          indent=1,
      )


if __name__ == "__main__":
  app.run(main)
