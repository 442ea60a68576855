"""Train-step time, compile time and input-pipeline overhead of every training stage.

  ./run.sh python benchmarks/train_step.py [--config=configs/default.py] [--steps=10]
      [--stages=codebook,codephys,physnet] [--stage1_workdir=DIR] [--data_dir=DIR]
      [--dataset=synthetic_rppg] [--json=PATH] [--pipelines=host,device]
      [--config.codephys.batch_size=8 ...]

For each stage (codebook = Stage I, codephys = Stage II, physnet = the PhysNet
baseline) the model, `TrainState`, loss and jitted `train_step` are built by
`train_lib.setup_stage`, exactly as training builds them, and the
training split of the config's dataset (prepared on first use) feeds
`data.train_pipeline` through the stage's own iterator (`StageSetup.make_iterator`,
from `stages.base.train_iterator`). Measured per stage:

  trace+lower  `train_step.lower(state, batch)` (tracing + StableHLO),
  compile      `.compile()` of that lowering (XLA),
  first step   wall time of the first call of a fresh jitted step (trace, lower,
               compile, run), as the first step of a training run pays it,
  resident     median step time, the same device-resident batch every step,
               `block_until_ready` after each step,
  pipeline     median step time with each batch taken from the real grain pipeline
               and put on the devices with `trainer.shard_batch` (also blocked each
               step), i.e. resident + whatever the host input work adds,
  overhead     (pipeline - resident) / resident.

`--pipelines=host,device` times both input paths (config `input_pipeline`) in
the same run: 'host' is grain + NumPy augmentation, 'device' cuts and augments
clips on the device from resident videos (`codephys_jax.device_input`).

A second table repeats resident/pipeline without the per-step sync, the way
`trainer.train_loop` runs (it only waits when it logs), where the host prepares
batch k+1 while the device computes step k.

Stage II needs a Stage I codebook: `--stage1_workdir` points at a finished run's
`codebook/` directory; without it the Stage I parameters (encoder, codebook,
decoder) come from a random initialisation of the config's Stage I model. The
step time does not depend on their values: every shape and every operation of
the jitted step (including the nearest-code argmin over all codes) is fixed by
the config, and nothing in it branches on data.

The mesh spans every device the process sees (one CPU device unless XLA_FLAGS
sets `--xla_force_host_platform_device_count`); the batch size is the config's
global batch. `--dataset` swaps the dataset (its builder's default options), e.g.
a paper-size config timed on synthetic data on a machine without the benchmark.
Prints the hardware and markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from typing import Any

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # `configs` and `codephys_jax` without PYTHONPATH too
  sys.path.insert(0, _REPO)

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from codephys_jax import data  # noqa: E402
from codephys_jax import models  # noqa: E402
from codephys_jax import stages  # noqa: E402
from codephys_jax import train_lib  # noqa: E402
from codephys_jax import trainer  # noqa: E402
from codephys_jax.stages import codebook as codebook_stage  # noqa: E402
from codephys_jax.stages import codephys as codephys_stage  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    os.path.join(_REPO, "configs", "default.py"),
    "Training config file.",
    lock_config=True,
)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per measurement (median).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps before each measurement.")
_STAGES = flags.DEFINE_list("stages", list(train_lib.STAGES), "Stages to time.")
_STAGE1_WORKDIR = flags.DEFINE_string(
    "stage1_workdir", "", "A Stage I run's codebook/ dir for Stage II; empty: random Stage I."
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data_dir (overrides the config's).")
_DATASET = flags.DEFINE_string("dataset", "", "Dataset name overriding the config's.")
_JSON = flags.DEFINE_string("json", "", "Also write the results as JSON here.")
_PIPELINES = flags.DEFINE_list(
    "pipelines",
    [],
    "Input pipelines to time side by side (host, device); empty: the " "config's input_pipeline.",
)


# ------------------------------------------------------------------ stage setups
# Each stage is built by train_lib.setup_stage, exactly as training builds it.


def _stage1(config: ml_collections.ConfigDict, stage1_workdir: str):
  """((Stage I subtrees, Stage I config), note): a real run, or random parameters."""
  if stage1_workdir:
    return codephys_stage.load_stage1(stage1_workdir), f"Stage I from {stage1_workdir}"
  model = codebook_stage.make_model(config)
  ppg = np.zeros((1, config.clip_length), np.float32)
  variables = jax.jit(lambda r: model.init(r, ppg, train=False))(jax.random.key(config.seed))
  stage1 = trainer.fetch(models.stage1_subtrees(dict(variables)))
  return (stage1, config.to_dict()), "random Stage I"


def _setup(
    config: ml_collections.ConfigDict, builder, mesh, stage: str, stage1_workdir: str
) -> tuple[stages.StageSetup, str]:
  stage1, note = _stage1(config, stage1_workdir) if stage == "codephys" else (None, "")
  return train_lib.setup_stage(config, builder, mesh, stage, stage1=stage1), note


# ------------------------------------------------------------------- measuring


def _timed_steps(step_fn, state, next_batch, *, steps: int, warmup: int, sync: bool):
  """(state, per-step seconds or [total seconds], last metrics)."""
  metrics = None
  for _ in range(warmup):
    state, metrics = step_fn(state, next_batch())
  jax.block_until_ready((state, metrics))
  times = []
  t_all = time.perf_counter()
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = step_fn(state, next_batch())
    if sync:
      jax.block_until_ready((state, metrics))
      times.append(time.perf_counter() - t0)
  jax.block_until_ready((state, metrics))
  if not sync:
    times = [(time.perf_counter() - t_all) / steps]
  return state, times, metrics


def measure(
    setup: stages.StageSetup, mesh, *, steps: int, warmup: int, batch_size: int
) -> dict[str, Any]:
  """Compile and step times of one stage (see the module docstring)."""
  probe = iter(setup.make_iterator(0))
  resident = trainer.shard_batch(mesh, next(probe))
  del probe  # its prefetched batches must not flatter the pipeline timings below
  jax.block_until_ready(resident)

  # A separate jitted object, so that its trace/compile caches cannot serve the
  # first-step timing of `step_fn` below.
  aot = trainer.make_train_step(setup.loss_fn, mesh=mesh, post_update=setup.post_update)
  t0 = time.perf_counter()
  lowered = aot.lower(setup.state, resident)
  t1 = time.perf_counter()
  lowered.compile()
  t2 = time.perf_counter()

  step_fn = trainer.make_train_step(setup.loss_fn, mesh=mesh, post_update=setup.post_update)
  t3 = time.perf_counter()
  state, metrics = step_fn(setup.state, resident)  # donates setup.state
  jax.block_until_ready((state, metrics))
  first = time.perf_counter() - t3

  out: dict[str, Any] = {"lower_s": t1 - t0, "compile_s": t2 - t1, "first_step_s": first}
  for sync in (True, False):
    suffix = "" if sync else "_async"
    state, times, _ = _timed_steps(
        step_fn, state, lambda: resident, steps=steps, warmup=warmup, sync=sync
    )
    out["resident" + suffix + "_ms"] = 1e3 * statistics.median(times)
    out["resident" + suffix + "_each_ms"] = [1e3 * t for t in times]
    # A fresh iterator: it starts with an empty prefetch buffer, as in training.
    it = iter(setup.make_iterator(0))
    state, times, metrics = _timed_steps(
        step_fn,
        state,
        lambda: trainer.shard_batch(mesh, next(it)),
        steps=steps,
        warmup=warmup,
        sync=sync,
    )
    del it
    out["pipeline" + suffix + "_ms"] = 1e3 * statistics.median(times)
    out["pipeline" + suffix + "_each_ms"] = [1e3 * t for t in times]
    out["overhead" + suffix + "_pct"] = 100.0 * (
        out["pipeline" + suffix + "_ms"] / out["resident" + suffix + "_ms"] - 1.0
    )
  # A broken setup (NaN loss) would time garbage: fail like train_loop would.
  trainer.check_finite(trainer.fetch(metrics), int(trainer.fetch(state.step)))
  out["examples_per_s"] = batch_size / (out["pipeline_ms"] / 1e3)
  return out


# -------------------------------------------------------------------- reporting


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
  devices = jax.devices()
  return {
      "cpu": _cpu_model(),
      "cores": os.cpu_count(),
      "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
      "load_avg_1m": os.getloadavg()[0],
      "jax": jax.__version__,
      "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind,
      "device_count": len(devices),
      "process_count": jax.process_count(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "python": platform.python_version(),
  }


def _params(n: int) -> str:
  return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def format_tables(rows: list[dict[str, Any]]) -> str:
  lines = [
      "| stage | params (trainable) | batch | trace+lower (s) | compile (s) | "
      "first step (s) | step, resident batch (ms) | step, real pipeline (ms) | "
      "pipeline overhead (%) | examples/s (real pipeline) |",
      "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    lines.append(
        f"| {r['stage']} | {_params(r['params'])} ({_params(r['trainable'])}) | {r['batch']} | "
        f"{r['lower_s']:.2f} | {r['compile_s']:.2f} | {r['first_step_s']:.2f} | "
        f"{r['resident_ms']:.1f} | {r['pipeline_ms']:.1f} | {r['overhead_pct']:+.1f} | "
        f"{r['examples_per_s']:.1f} |"
    )
  lines += [
      "",
      "Without the per-step sync (as trainer.train_loop runs; mean over the steps):",
      "",
      "| stage | step, resident batch (ms) | step, real pipeline (ms) | " "pipeline overhead (%) |",
      "|---|---|---|---|",
  ]
  for r in rows:
    lines.append(
        f"| {r['stage']} | {r['resident_async_ms']:.1f} | "
        f"{r['pipeline_async_ms']:.1f} | {r['overhead_async_pct']:+.1f} |"
    )
  return "\n".join(lines)


def main(argv):
  del argv
  config = _CONFIG.value
  if _DATASET.value:
    # Options and raw trees belong to the dataset they were written for.
    config.dataset = _DATASET.value
    config.dataset_options = ml_collections.ConfigDict()
    config.manual_dir = ""
  if _DATA_DIR.value:
    config.data_dir = _DATA_DIR.value
  unknown = [s for s in _STAGES.value if s not in train_lib.STAGES]
  if unknown:
    raise ValueError(f"unknown stages {unknown}; known: {list(train_lib.STAGES)}")
  hw = hardware()
  print(
      f"Hardware: {hw['cpu']}, {hw['cores']} cores ({hw['cores_usable']} usable), "
      f"load average {hw['load_avg_1m']:.2f} at start; Python {hw['python']}, "
      f"jax {hw['jax']}, backend {hw['backend']} ({hw['device_kind']}), "
      f"{hw['device_count']} device(s), {hw['process_count']} process(es)"
      + (f", XLA_FLAGS={hw['xla_flags']}" if hw["xla_flags"] else ""),
      flush=True,
  )
  t0 = time.perf_counter()
  builder = data.load_builder(config.dataset, **data.builder_kwargs(config))
  print(
      f"Dataset {config.dataset} ready in {time.perf_counter() - t0:.1f} s; "
      f"{_STEPS.value} timed steps after {_WARMUP.value} warm-up steps per measurement",
      flush=True,
  )
  mesh = trainer.make_mesh()
  rows = []
  pipelines = _PIPELINES.value or [config.get("input_pipeline", "host")]
  for stage in _STAGES.value:
    for pipeline in pipelines:
      config.input_pipeline = pipeline
      setup, note = _setup(config, builder, mesh, stage, _STAGE1_WORKDIR.value)
      batch = config[stage].batch_size
      trainable = trainer.num_params(
          {k: v for k, v in setup.state.params.items() if k not in setup.frozen}
      )
      row = {
          "stage": stage if len(pipelines) == 1 else f"{stage} ({pipeline} input)",
          "pipeline": pipeline,
          "params": trainer.num_params(setup.state.params),
          "trainable": trainable,
          "batch": batch,
          "note": note,
      }
      row.update(measure(setup, mesh, steps=_STEPS.value, warmup=_WARMUP.value, batch_size=batch))
      rows.append(row)
      print(f"  {row['stage']}: measured", flush=True)
  hw["load_avg_1m_end"] = os.getloadavg()[0]
  print(f"Load average at the end: {hw['load_avg_1m_end']:.2f}")
  print(
      f"Config: {config.dataset}, {config.preprocess.size}x{config.preprocess.size} crops, "
      f"{config.clip_length}-frame clips, input_norm={config.input_norm}, "
      f"augment={'on' if config.augment.get('enabled', False) else 'off'}"
  )
  print(format_tables(rows))
  for r in rows:
    if r["note"]:
      print(f"{r['stage']}: {r['note']}")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(
          {"hardware": hw, "steps": _STEPS.value, "warmup": _WARMUP.value, "rows": rows},
          f,
          indent=1,
      )


if __name__ == "__main__":
  app.run(main)
