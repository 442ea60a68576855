"""`train_and_evaluate(config, workdir)`: CodePhys Stage I, Stage II and the PhysNet baseline.

One config may run several stages in order (`config.stages`); each stage has its
own sub-workdir that `eval.py --config.checkpoint=` accepts:

  codebook/  Stage I: PPG autoencoder + VQ codebook learned from ground-truth PPG.
  codephys/  Stage II: video encoder querying the frozen Stage I codebook.
  physnet/   The baseline: the same backbone with a plain regression head.

This module is the training core: it looks each stage up in
`codephys_jax.stages` (model, loss, evaluation hook, frozen parameters), hands
its pure `loss_fn` to `codephys_jax.trainer` (jit over a data mesh, donated
state, RNG folded by step, NaN checks), with orbax checkpoints that make a
killed run resume where it stopped, TF-free TensorBoard writers (`tb_writer`)
and a progress report. Video models are selected by whole-video HR MAE on
`config.eval_split` and exported. After the stages, `config.compare` evaluates
every trained model and the unsupervised baselines (`codephys_jax.comparison`)
and writes `results.json` (the comparison table) into the workdir.

With `config.refit`, each video stage is then trained once more, in
`refit/<stage>/`, on the whole training split (the validation subjects
included) up to the step selected on those subjects, with the same learning-rate
schedule; the comparison adds these models as `<stage>_refit` rows.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from codephys_jax import checkpointing
from codephys_jax import comparison
from codephys_jax import curves
from codephys_jax import data as data_lib
from codephys_jax import distributed
from codephys_jax import eval_lib
from codephys_jax import export as export_lib
from codephys_jax import inference
from codephys_jax import stages as stages_lib
from codephys_jax import tb_writer
from codephys_jax import trainer

STAGES = tuple(stages_lib.STAGES)
# What a video stage's `select_metric` may name (lower is better): whole-video HR
# MAE of the validation subjects, or the negative SNR of their predictions (the
# power at the reference HR and its harmonic against the rest of the band),
# which unlike the MAE of one or two videos changes smoothly between checkpoints;
# or that SNR in windows of SELECTION_WINDOW_S seconds (at most the shortest
# video), each against its own window's reference HR, averaged: a heart rate
# that drifts by 10-15 bpm over a recording spreads the pulse over bins that the
# whole-video SNR counts as noise.
SELECTION_METRICS = ("mae", "neg_snr", "neg_window_snr")
SELECTION_WINDOW_S = 10.0


def _builder(config: ml_collections.ConfigDict):
  return data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))


def _writer(workdir: str) -> tb_writer.MetricWriter:
  # One set of event files per run: the other processes of a multi-process run only log.
  # A plain-JSON copy of every scalar feeds workdir/curves.png (curves.plot_run).
  return tb_writer.MetricWriter(
      workdir,
      just_logging=jax.process_index() > 0,
      jsonl_path=os.path.join(workdir, curves.SCALARS_FILE),
  )


def _meta(config: ml_collections.ConfigDict, stage: str, **extra: Any) -> dict[str, Any]:
  return {"stage": stage, "config": json.loads(config.to_json_best_effort()), **extra}


def setup_stage(
    config: ml_collections.ConfigDict,
    builder,
    mesh,
    stage: str,
    *,
    stage1: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> stages_lib.StageSetup:
  """Model, initial state, loss and data iterator of one stage.

  `stage1`: what the stage's `dependencies` return: (Stage I subtrees, Stage I
  config[, warm-start backbone]), required for 'codephys' (see
  `stages.codephys.load_stage1`); for 'physnet' None (from scratch) or a warm-start
  backbone (`stages.base.load_backbone`); 'codebook' takes None.
  """
  return stages_lib.get_stage(stage).setup(config, builder, mesh, stage1)


def _video_eval(model, videos, config, *, batch_size: int):
  """on_eval: whole-video HR metrics (overlap-add inference) on an eval split."""

  # Jitted once: every evaluation reuses the compiled inference.
  apply = jax.jit(inference.rppg_fn(model, config.input_norm))

  def on_eval(state, step):
    del step
    predict = inference.frames_predictor(
        apply, trainer.fetch(state.eval_variables), config, batch_size=batch_size
    )
    results = eval_lib.run_method(
        videos, lambda v: predict(v["frames"]), progress=False, total=len(videos)
    )
    result = eval_lib.score(results, config.eval)
    m = result.metrics
    out = {k: m[k] for k in ("mae", "rmse", "pearson", "snr")}
    # Lower is better for every selection metric: SNR as its negative.
    out["neg_snr"] = -m["snr"]
    windowed = ml_collections.ConfigDict(config.eval.to_dict())
    # Never longer than the shortest video: each video gives at least one window.
    shortest_s = min(len(pred) / fps for _, pred, _, fps in results)
    windowed.window_seconds = min(SELECTION_WINDOW_S, shortest_s)
    windowed.window_stride_seconds = None
    windowed.extra_hr_methods = ()
    out["window_snr"] = eval_lib.score(results, windowed).metrics["snr"]
    out["neg_window_snr"] = -out["window_snr"]
    # Pearson over a handful of videos is undefined when all HRs coincide;
    # only the selection metrics (MAE, SNR) must be finite.
    return {k: v for k, v in out.items() if k in SELECTION_METRICS or np.isfinite(v)}

  return on_eval


def _selection_metric(spec: stages_lib.base.Stage, cfg: ml_collections.ConfigDict) -> str:
  """The metric that picks a stage's best checkpoint: `select_metric` of video stages."""
  name = cfg.get("select_metric") or spec.best_metric
  if spec.video_model and name not in SELECTION_METRICS:
    raise ValueError(f"select_metric must be one of {SELECTION_METRICS}, got {name!r}")
  if not spec.video_model and name != spec.best_metric:
    raise ValueError(f"stage {spec.name!r} selects on {spec.best_metric!r}, not {name!r}")
  return name


def train_stage(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    stage: str,
    until: int | None = None,
    select: bool = True,
) -> dict[str, float]:
  """Train one stage into `workdir`; returns its final evaluation metrics.

  `until` stops the run at that step; the schedule stays the one of the stage's
  `num_steps`. `select=False` tracks no best checkpoint: every reader of the
  run (export, eval.py, `init_backbone`) then takes its last one.
  """
  spec = stages_lib.get_stage(stage)
  cfg = config[stage]
  mesh = trainer.make_mesh()
  builder = _builder(config)
  dependencies, extra_meta = spec.dependencies(config, workdir)
  setup = spec.setup(config, builder, mesh, dependencies)
  if spec.on_eval is not None:
    on_eval = spec.on_eval(setup, config, builder)
  else:
    # Held-out training subjects (config.eval_split = "val"); never test.
    _, eval_videos = data_lib.train_val_videos(builder, config)
    on_eval = _video_eval(setup.model, eval_videos, config, batch_size=cfg.batch_size)
  metrics = _fit(
      config,
      cfg,
      workdir,
      setup=setup,
      mesh=mesh,
      on_eval=on_eval,
      best_metric=_selection_metric(spec, cfg) if select else None,
      stage=stage,
      extra_meta=extra_meta,
      until=until,
  )
  if spec.video_model and config.get("export", True):
    export_lib.export_model(workdir)
  return metrics


# ---------------------------------------------------------------------- shared loop


def _fit(
    config,
    cfg,
    workdir,
    *,
    setup: stages_lib.StageSetup,
    mesh,
    on_eval,
    best_metric: str | None,
    stage: str,
    extra_meta: Mapping[str, Any] | None = None,
    until: int | None = None,
) -> dict[str, float]:
  num_steps = int(cfg.num_steps if until is None else until)
  if not 1 <= num_steps <= int(cfg.num_steps):
    raise ValueError(f"{stage}: until={until} must be in [1, num_steps={cfg.num_steps}]")
  state = setup.state
  os.makedirs(workdir, exist_ok=True)
  writer = _writer(workdir)
  logging.info(
      "%s: %d parameters\n%s",
      stage,
      trainer.num_params(state.params),
      trainer.parameter_overview(state.params, include_stats=False),
  )
  ckpt = checkpointing.Checkpointer(
      os.path.join(workdir, "checkpoints"),
      max_to_keep=cfg.get("max_to_keep", 2),
      best_metric=best_metric,
      best_mode="min",
      meta=_meta(config, stage, **(extra_meta or {})),
  )
  restored = ckpt.restore_latest(trainer.abstract_state(state))
  if restored is not None:
    restored_step = int(trainer.fetch(restored.step))
    if restored_step > num_steps:
      raise ValueError(
          f"{stage}: {workdir} holds a checkpoint at step {restored_step}, past the "
          f"{num_steps} steps this run stops at; use a new workdir"
      )
    logging.info("%s: resuming from step %d", stage, restored_step)
    state = restored
  train_step = trainer.make_train_step(setup.loss_fn, mesh=mesh, post_update=setup.post_update)
  hooks = [
      tb_writer.ProgressReport(
          num_train_steps=num_steps, writer=writer, every_secs=30, name=stage
      )
  ]
  try:
    state = trainer.train_loop(
        state,
        train_step=train_step,
        make_iterator=setup.make_iterator,
        num_steps=num_steps,
        mesh=mesh,
        checkpointer=ckpt,
        writer=writer,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        eval_every=cfg.eval_every,
        on_eval=on_eval,
        hooks=hooks,
    )
  except BaseException:
    # Interrupted (preemption, Ctrl-C, NaN): let in-flight async saves land so
    # that the next run resumes from the newest complete checkpoint.
    ckpt.wait()
    raise
  final = on_eval(state, int(trainer.fetch(state.step)))
  writer.close()
  ckpt.close()
  logging.info("%s finished: %s", stage, final)
  return final


# ---------------------------------------------------------------------------- entry


def _check_compare_splits(config: ml_collections.ConfigDict) -> None:
  """Every comparison split exists, before any training (a tree without a `test`
  split, say, fails now rather than after the stages)."""
  builder = _builder(config)
  for condition, spec in config.compare.splits.items():
    name, _ = data_lib.parse_split(spec)
    if name not in builder.info.splits or not builder.info.splits[name].num_examples:
      raise ValueError(
          f"compare.splits[{condition!r}] = {spec!r}: {builder.name} has no videos in split "
          f"{name!r} (splits: {sorted(builder.info.splits)}); set --config.compare.splits, "
          "or cross-validate with benchmarks/crossval.py"
      )


def refit_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """`config` for the refit pass of the run in `workdir`: the validation subjects
  are trained on, and Stage II keeps the run's own Stage I."""
  c = copy.deepcopy(config)
  with c.unlocked():
    c.val.train_on_val = True
    if "codephys" in c and not c.codephys.get("stage1_workdir"):
      c.codephys.stage1_workdir = os.path.join(workdir, "codebook")
  return c


def selected_step(stage_dir: str) -> int:
  """The step of the checkpoint a finished stage selected on its validation subjects."""
  return int(checkpointing.load_params(os.path.join(stage_dir, "checkpoints"), which="best")[2]["step"])


def refit(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Train every video stage of the finished run in `workdir` again, on the whole
  training split, up to its selected step, into `workdir/refit/<stage>`."""
  if config.eval_split != data_lib.VAL_SPLIT:
    raise ValueError(
        f"refit needs validation subjects held out of train_split (eval_split="
        f"'{data_lib.VAL_SPLIT}'), got eval_split={config.eval_split!r}"
    )
  cfg = refit_config(config, workdir)
  summary = {}
  for stage in config.stages:
    if not stages_lib.get_stage(stage).video_model:
      continue
    step = selected_step(os.path.join(workdir, stage))
    stage_dir = os.path.join(workdir, comparison.REFIT_DIR, stage)
    logging.info("=== refit %s up to its selected step %d -> %s", stage, step, stage_dir)
    # The validation subjects are trained on here: nothing is selected, the last
    # checkpoint is the refit model (and the backbone a refit Stage II starts from).
    metrics = train_stage(cfg, stage_dir, stage=stage, until=step, select=False)
    summary[stage] = {**metrics, "step": step}
  return summary


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Run `config.stages` in order, then the comparison if `config.compare.enabled`."""
  distributed.maybe_initialize()
  for stage in config.stages:
    stages_lib.get_stage(stage)  # unknown names fail before any work
  if config.get("compare") is not None and config.compare.get("enabled", False):
    _check_compare_splits(config)
  summary: dict[str, Any] = {}
  for stage in config.stages:
    stage_dir = os.path.join(workdir, stage)
    logging.info("=== stage %s -> %s", stage, stage_dir)
    summary[stage] = train_stage(config, stage_dir, stage=stage)
  if config.get("refit", False):
    summary["refit"] = refit(config, workdir)
  if jax.process_index() == 0:
    logging.info("training curves: %s", curves.plot_run(workdir))
  if config.get("compare") is not None and config.compare.get("enabled", False):
    result = comparison.compare(config, workdir)
    summary["results"] = result
    print(comparison.format_table(result["table"]), flush=True)
  return summary
