"""`train_and_evaluate(config, workdir)`: CodePhys Stage I, Stage II and the baseline.

One config may run several stages in order (`config.stages`); each stage has its
own sub-workdir that `eval.py --config.checkpoint=` accepts:

  codebook/  Stage I: PPG autoencoder + VQ codebook learned from ground-truth PPG.
  codephys/  Stage II: video encoder querying the frozen Stage I codebook.
  baseline/  The same backbone with a plain regression head (negative Pearson).

Every stage is a pure `loss_fn` handed to `codephys_jax.trainer` (jit over a data
mesh, donated state, RNG folded by step, NaN checks), with orbax checkpoints that
make a killed run resume where it stopped, clu writers for TensorBoard and
a progress report. After the stages, `config.compare` evaluates every trained
model and the unsupervised baselines on the evaluation splits and writes
`results.json` (the comparison table) into the workdir.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from clu import metric_writers
from clu import periodic_actions

from codephys_jax import checkpointing
from codephys_jax import data as data_lib
from codephys_jax import distributed
from codephys_jax import eval_lib
from codephys_jax import export as export_lib
from codephys_jax import inference
from codephys_jax import jsonio
from codephys_jax import losses
from codephys_jax import models
from codephys_jax import trainer

STAGES = ("codebook", "codephys", "baseline")
EXPORT_NAME = "rppg_model.jax"


# ----------------------------------------------------------------------------- inputs


def _standardized(x: jax.Array) -> jax.Array:
  mean = jnp.mean(x, axis=(1, 2, 3, 4), keepdims=True)
  std = jnp.std(x, axis=(1, 2, 3, 4), keepdims=True)
  return (x - mean) / (std + 1e-6)


def _temporal(x: jax.Array) -> jax.Array:
  # Remove each pixel's mean over the clip: the static face and background go,
  # the (sub-percent) pulse and motion stay, rescaled to unit variance per clip.
  centred = x - jnp.mean(x, axis=1, keepdims=True)
  return centred / (jnp.std(centred, axis=(1, 2, 3, 4), keepdims=True) + 1e-6)


INPUT_NORMS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "standardized": _standardized,
    "temporal": _temporal,
}


def normalize_frames(frames: jax.Array, mode: str = "standardized") -> jax.Array:
  """uint8 clips [B, T, H, W, 3] -> float32 model input (on device).

  'standardized': z-score over the whole clip (PhysNet's usual input);
  'temporal': per-pixel temporal mean removed, then unit variance per clip.
  """
  if mode not in INPUT_NORMS:
    raise ValueError(f"unknown input_norm {mode!r}; known: {sorted(INPUT_NORMS)}")
  return INPUT_NORMS[mode](frames.astype(jnp.float32) / 255.0)


def _builder(config: ml_collections.ConfigDict):
  return data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))


def _clips(builder, split: str, clip_length: int, stride: int | None,
           augment_cfg: ml_collections.ConfigDict | None = None):
  videos = data_lib.VideoSource(builder, split)
  augment = None
  kwargs = {}
  if augment_cfg is not None and augment_cfg.get("enabled", False):
    from codephys_jax import augment as augment_lib

    aug_cfg = augment_lib.AugmentConfig.from_config(augment_cfg)
    kwargs["source_length"] = augment_lib.required_source_length(aug_cfg, clip_length)
    augment = augment_lib.make_augment(aug_cfg, clip_length)
  clips = data_lib.ClipSource(videos, clip_length=clip_length, stride=stride, **kwargs)
  return clips, augment


def _local_iterator(clips, augment, *, batch_size: int, seed: int, keys: tuple[str, ...],
                    mesh, input_pipeline: str = "host",
                    augment_cfg: ml_collections.ConfigDict | None = None
                    ) -> Callable[[int], Any]:
  """make_iterator(start_step) for trainer.train_loop (deterministic resume).

  input_pipeline 'host': grain + NumPy augmentation (`augment`), local NumPy batches;
  'device': videos resident on the devices, clips cut and augmented (`augment_cfg`)
  by jitted code (`codephys_jax.device_input`), global batches already sharded;
  'auto': 'device' where the split fits its memory budget and the augmentation
  has no camera degradations, else 'host'.
  """
  trainer.local_batch_size(batch_size, mesh)  # validates divisibility early
  if input_pipeline in ("device", "auto"):
    from codephys_jax import device_input

    try:
      return device_input.from_config(clips, mesh, keys=keys, batch_size=batch_size,
                                      seed=seed, augment_cfg=augment_cfg)
    except device_input.DoesNotFit as e:
      if input_pipeline == "device":
        raise
      logging.info("input_pipeline=auto: host input (%s)", e)
  elif input_pipeline != "host":
    raise ValueError(f"unknown input_pipeline {input_pipeline!r}; known: 'host', 'device', "
                     "'auto'")
  spec = data_lib.PipelineSpec(batch_size=batch_size, seed=seed)

  def make_iterator(start_step: int):
    it = data_lib.train_pipeline(
        clips, spec, start_step=start_step, augment=augment,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )
    return ({k: b[k] for k in keys} for b in it)

  return make_iterator


def _optimizer(cfg: ml_collections.ConfigDict, labels: Any | None = None):
  total = max(2, int(cfg.num_steps))
  warmup = max(1, min(int(cfg.warmup_steps), total // 2))
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, warmup, total,
      end_value=cfg.learning_rate * cfg.get("final_lr_fraction", 0.1),
  )
  tx = optax.chain(
      optax.clip_by_global_norm(cfg.get("grad_clip", 1.0)),
      optax.adamw(schedule, weight_decay=cfg.weight_decay),
  )
  if labels is None:
    return tx
  return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)


def _writer(workdir: str):
  return metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=False
  )


def _meta(config: ml_collections.ConfigDict, stage: str, **extra: Any) -> dict[str, Any]:
  return {"stage": stage, "config": json.loads(config.to_json_best_effort()), **extra}


# ----------------------------------------------------------------------------- Stage I


def stage1_model(cfg: ml_collections.ConfigDict) -> models.PPGAutoencoder:
  return models.get_model("ppg_autoencoder", **dict(cfg.model))


def _stage1_loss(model, cfg):
  w = cfg.loss_weights

  def loss_fn(params, model_state, batch, rng, step):
    del rng, step
    ppg = batch["ppg"]
    out, new_state = model.apply(
        {"params": params, **model_state}, ppg, train=True, mutable=list(model_state)
    )
    mse = losses.mse(out["recon"], ppg)
    npc = losses.neg_pearson(out["recon"], ppg)
    loss = w.mse * mse + w.neg_pearson * npc + w.vq * out["vq_loss"]
    metrics = {"mse": mse, "neg_pearson": npc, "vq_loss": out["vq_loss"],
               "perplexity": out["perplexity"], "usage": out["usage"]}
    return loss, (dict(new_state), metrics)

  return loss_fn


def _stage1_restart(model, threshold: float):
  """post_update: re-seed dead codes from this batch's encoder outputs (EMA rule)."""

  def post_update(state, batch, rng):
    if "vq_state" not in state.model_state:
      return state
    z_e = model.apply(state.variables, batch["ppg"], method=model.encode)
    z_flat = z_e.reshape(-1, z_e.shape[-1])
    vq_state = models.restart_dead_codes(
        state.model_state["vq_state"], z_flat, rng, threshold=threshold
    )
    return state.replace(model_state={**state.model_state, "vq_state": vq_state})

  return post_update


def train_codebook(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  cfg = config.codebook
  mesh = trainer.make_mesh()
  builder = _builder(config)
  setup = setup_stage(config, builder, mesh, "codebook")
  model = setup.model
  eval_clips, _ = _clips(builder, config.eval_split, config.clip_length, None)
  apply_eval = jax.jit(lambda v, x: model.apply(v, x, train=False))

  def on_eval(state, step):
    del step
    variables = trainer.fetch(state.variables)
    mse, r, perp, n = 0.0, 0.0, 0.0, 0
    for batch, real in data_lib.eval_batches(eval_clips, cfg.batch_size):
      out = apply_eval(variables, batch["ppg"])
      rec = np.asarray(out["recon"])[:real]
      ref = batch["ppg"][:real]
      mse += float(np.sum(np.mean((rec - ref) ** 2, axis=1)))
      r += float(np.sum([np.corrcoef(a, b)[0, 1] for a, b in zip(rec, ref)]))
      perp += float(out["perplexity"]) * real
      n += real
    return {"recon_mse": mse / n, "recon_pearson": r / n, "perplexity": perp / n}

  return _fit(config, cfg, workdir, setup=setup, mesh=mesh, on_eval=on_eval,
              best_metric="recon_mse", stage="codebook")


# ---------------------------------------------------------------------------- Stage II


def _stage1_fields(stage1_config: Mapping[str, Any]) -> dict[str, Any]:
  """CodePhys fields that must mirror the Stage I autoencoder."""
  m = dict(stage1_config["codebook"]["model"])
  keys = ("num_codes", "code_dim", "hidden", "num_res_blocks", "res_kernel",
          "down_kernel", "downsample")
  return {k: m[k] for k in keys if k in m}


def stage1_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Where the Stage I run lives: explicit config, else the sibling codebook/."""
  explicit = config.codephys.get("stage1_workdir")
  return explicit or os.path.join(os.path.dirname(workdir.rstrip("/")), "codebook")


def codephys_model(config: ml_collections.ConfigDict, stage1_config: Mapping[str, Any]):
  fields = dict(config.codephys.model)
  fields.update(_stage1_fields(stage1_config))
  fields["backbone_kwargs"] = dict(fields.get("backbone_kwargs") or {})
  return models.get_model("codephys", **fields)


def baseline_model(config: ml_collections.ConfigDict):
  fields = dict(config.baseline.model)
  fields["backbone_kwargs"] = dict(fields.get("backbone_kwargs") or {})
  return models.get_model("physnet_regression", **fields)


def _labels_for(params, *, frozen: tuple[str, ...]):
  return {k: jax.tree.map(lambda _: "frozen" if k in frozen else "trainable", v)
          for k, v in params.items()}


def _codephys_loss(model, config):
  cfg = config.codephys
  w = cfg.loss_weights
  fs = float(config.preprocess.target_fps)

  def loss_fn(params, model_state, batch, rng, step):
    del step
    variables = {"params": params, **model_state}
    clip = normalize_frames(batch["frames"], config.input_norm)
    ppg = batch["ppg"]
    out, new_state = model.apply(
        variables, clip, train=True, mutable=["batch_stats"], rngs={"dropout": rng}
    )
    tg = model.apply(variables, ppg, method=model.targets)
    npc = losses.neg_pearson(out["rppg"], ppg)
    feat = losses.feature_loss(out["queries"], tg["target_quantized"])
    # The teacher is a fixed target: gradients through it would let both sides
    # collapse to zero, which the distillation loss cannot tell from agreement.
    # The attention map is learned through the query path; letting this loss
    # train it would simply drive w to 0 to shrink its own (w + 0.5) weights.
    distill = losses.soft_distillation(
        out["features"], jax.lax.stop_gradient(tg["teacher"]), out["attention"],
        detach_attention=True,
    )
    hr = losses.hr_from_ppg_jax(ppg, fs)
    ce, kl = losses.frequency_ce_loss(out["rppg"], hr, fs)
    loss = (w.neg_pearson * npc + w.feature * feat + w.distill * distill
            + w.freq_ce * ce + w.freq_kl * kl)
    metrics = {"neg_pearson": npc, "feature": feat, "distill": distill, "freq_ce": ce,
               "freq_kl": kl, "perplexity": out["perplexity"], "usage": out["usage"],
               "attention_mean": jnp.mean(out["attention"])}
    if out["code_logits"] is not None:
      code_ce = losses.code_cross_entropy(out["code_logits"], tg["target_indices"])
      loss = loss + w.code_ce * code_ce
      metrics["code_ce"] = code_ce
      metrics["code_acc"] = jnp.mean(out["indices"] == tg["target_indices"])
    return loss, ({**model_state, **new_state}, metrics)

  return loss_fn


def _baseline_loss(model, input_norm: str):
  def loss_fn(params, model_state, batch, rng, step):
    del step
    clip = normalize_frames(batch["frames"], input_norm)
    out, new_state = model.apply(
        {"params": params, **model_state}, clip, train=True, mutable=["batch_stats"],
        rngs={"dropout": rng},
    )
    npc = losses.neg_pearson(out["rppg"], batch["ppg"])
    return npc, ({**model_state, **new_state}, {"neg_pearson": npc})

  return loss_fn


def _rppg_fn(model, input_norm: str) -> Callable[[Any, Any], jax.Array]:
  """(variables, uint8 clips [B, T, S, S, 3]) -> rPPG [B, T]: the model's inference."""
  return lambda v, clips: model.apply(v, normalize_frames(clips, input_norm),
                                      train=False)["rppg"]


def _frames_predictor(apply, variables, config: ml_collections.ConfigDict, *,
                      batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
  """Whole-video frames [N, S, S, 3] -> waveform [N] (overlap-add of half-overlapping
  clips); the one inference path of model selection, eval.py and comparisons.
  `apply` is `jax.jit(_rppg_fn(...))`, built once per model so it compiles once."""
  clip_fn = lambda clips: np.asarray(apply(variables, clips))  # noqa: E731
  return functools.partial(inference.predict_video, clip_fn=clip_fn,
                           clip_length=config.clip_length, hop=config.clip_length // 2,
                           batch_size=batch_size)


def _video_eval(model, videos, config, *, batch_size: int):
  """on_eval: whole-video HR metrics (overlap-add inference) on an eval split."""

  # Jitted once: every evaluation reuses the compiled inference.
  apply = jax.jit(_rppg_fn(model, config.input_norm))

  def on_eval(state, step):
    del step
    predict = _frames_predictor(apply, trainer.fetch(state.variables), config,
                                batch_size=batch_size)
    results = eval_lib.run_method(
        videos, lambda v: predict(v["frames"]), progress=False, total=len(videos)
    )
    result = eval_lib.score(results, config.eval)
    m = result.metrics
    out = {k: m[k] for k in ("mae", "rmse", "pearson", "snr")}
    # Pearson over a handful of videos is undefined when all HRs coincide;
    # only the selection metric (MAE) must be finite.
    return {k: v for k, v in out.items() if k == "mae" or np.isfinite(v)}

  return on_eval


def load_stage1(stage1_workdir: str) -> tuple[dict[str, Any], dict[str, Any]]:
  """(Stage I params in CodePhys naming, the Stage I run's config) from its best checkpoint."""
  params, state, meta = checkpointing.load_params(
      os.path.join(stage1_workdir, "checkpoints"), which="best")
  subtrees = models.stage1_subtrees({"params": params, **dict(state or {})})
  return trainer.fetch(subtrees), meta["config"]


@dataclasses.dataclass
class StageSetup:
  """A stage ready for `trainer.train_loop` (shared by training and benchmarks)."""

  model: Any
  state: trainer.TrainState
  loss_fn: trainer.LossFn
  post_update: trainer.PostUpdateFn | None
  make_iterator: Callable[[int], Any]
  frozen: tuple[str, ...] = ()


def setup_stage(config: ml_collections.ConfigDict, builder, mesh, stage: str, *,
                stage1: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
                ) -> StageSetup:
  """Model, initial state, loss and data iterator of one stage.

  `stage1` = (Stage I subtrees, Stage I config), required for 'codephys'
  (see `load_stage1`).
  """
  cfg = config[stage]
  if stage == "codebook":
    model = stage1_model(cfg)
    clips, _ = _clips(builder, config.train_split, config.clip_length, cfg.clip_stride)
    example = {"ppg": np.zeros((cfg.batch_size, config.clip_length), np.float32)}
    state = trainer.create_train_state(
        init_fn=lambda r, b: model.init(r, b["ppg"], train=False), tx=_optimizer(cfg),
        rng=jax.random.key(config.seed), mesh=mesh, example_batch=example,
    )
    return StageSetup(
        model=model, state=state, loss_fn=_stage1_loss(model, cfg),
        post_update=_stage1_restart(model, cfg.model.get("dead_code_threshold", 0.1)),
        make_iterator=_local_iterator(clips, None, batch_size=cfg.batch_size,
                                      seed=config.seed, keys=("ppg",), mesh=mesh,
                                      input_pipeline=config.get("input_pipeline", "host")),
    )
  clips, augment = _clips(builder, config.train_split, config.clip_length,
                          cfg.clip_stride, config.get("augment"))
  size = int(config.preprocess.size)
  example = {"frames": np.zeros((cfg.batch_size, config.clip_length, size, size, 3), np.uint8),
             "ppg": np.zeros((cfg.batch_size, config.clip_length), np.float32)}
  if stage == "codephys":
    if stage1 is None:
      raise ValueError("setup_stage('codephys') needs stage1=(subtrees, stage1_config)")
    subtrees, stage1_config = stage1
    model = codephys_model(config, stage1_config)
    frozen = ["stage1_encoder", "stage1_codebook", "stage1_decoder", "teacher_proj"]
    if not cfg.model.get("freeze_teacher", True):
      frozen.remove("stage1_encoder")
    loss_fn = _codephys_loss(model, config)
  else:
    model = baseline_model(config)
    subtrees, frozen = {}, []
    loss_fn = _baseline_loss(model, config.input_norm)

  def init_fn(r, b):
    variables = dict(model.init(r, normalize_frames(b["frames"], config.input_norm),
                                train=False))
    variables["params"] = {**variables["params"], **subtrees}
    return variables

  labels = None
  if frozen:
    abstract = jax.eval_shape(init_fn, jax.random.key(0), example)
    labels = _labels_for(abstract["params"], frozen=tuple(frozen))
  state = trainer.create_train_state(
      init_fn=init_fn, tx=_optimizer(cfg, labels), rng=jax.random.key(config.seed),
      mesh=mesh, example_batch=example,
  )
  return StageSetup(
      model=model, state=state, loss_fn=loss_fn, post_update=None,
      make_iterator=_local_iterator(clips, augment, batch_size=cfg.batch_size,
                                    seed=config.seed, keys=("frames", "ppg"), mesh=mesh,
                                    input_pipeline=config.get("input_pipeline", "host"),
                                    augment_cfg=config.get("augment")),
      frozen=tuple(frozen),
  )


def train_video_model(config: ml_collections.ConfigDict, workdir: str, *,
                      stage: str) -> dict[str, float]:
  cfg = config[stage]
  mesh = trainer.make_mesh()
  builder = _builder(config)
  stage1, extra_meta = None, {}
  if stage == "codephys":
    s1_dir = stage1_dir(config, workdir)
    stage1 = load_stage1(s1_dir)
    extra_meta = {"stage1_workdir": os.path.abspath(s1_dir), "stage1_config": stage1[1]}
  setup = setup_stage(config, builder, mesh, stage, stage1=stage1)
  eval_videos = data_lib.VideoSource(builder, config.eval_split)
  metrics = _fit(
      config, cfg, workdir, setup=setup, mesh=mesh,
      on_eval=_video_eval(setup.model, eval_videos, config, batch_size=cfg.batch_size),
      best_metric="mae", stage=stage, extra_meta=extra_meta,
  )
  if config.get("export", True):
    export_model(workdir)
  return metrics


# ---------------------------------------------------------------------- shared loop


def _fit(config, cfg, workdir, *, setup: StageSetup, mesh, on_eval, best_metric: str,
         stage: str, extra_meta: Mapping[str, Any] | None = None) -> dict[str, float]:
  state = setup.state
  os.makedirs(workdir, exist_ok=True)
  writer = _writer(workdir)
  logging.info("%s: %d parameters\n%s", stage, trainer.num_params(state.params),
               trainer.parameter_overview(state.params, include_stats=False))
  ckpt = checkpointing.Checkpointer(
      os.path.join(workdir, "checkpoints"), max_to_keep=cfg.get("max_to_keep", 2),
      best_metric=best_metric, best_mode="min", meta=_meta(config, stage, **(extra_meta or {})),
  )
  restored = ckpt.restore_latest(trainer.abstract_state(state))
  if restored is not None:
    logging.info("%s: resuming from step %d", stage, int(trainer.fetch(restored.step)))
    state = restored
  train_step = trainer.make_train_step(setup.loss_fn, mesh=mesh,
                                       post_update=setup.post_update)
  hooks = [periodic_actions.ReportProgress(num_train_steps=cfg.num_steps, writer=writer,
                                           every_secs=30)]
  try:
    state = trainer.train_loop(
        state, train_step=train_step, make_iterator=setup.make_iterator,
        num_steps=cfg.num_steps,
        mesh=mesh, checkpointer=ckpt, writer=writer, log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, eval_every=cfg.eval_every, on_eval=on_eval,
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


# ----------------------------------------------------------------- loading / export


def _load_run(workdir: str, *, which: str = "best"):
  """(model, variables, run config, meta) of a finished video-model stage."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"{workdir}: no checkpoints/ (is this a training workdir?)")
  mesh = trainer.make_mesh(devices=jax.local_devices()[:1])
  params, model_state, meta = checkpointing.load_params(ckpt_dir, which=which, mesh=mesh)
  config = ml_collections.ConfigDict(meta["config"])
  stage = meta["stage"]
  if stage == "codephys":
    model = codephys_model(config, meta["stage1_config"])
  elif stage == "baseline":
    model = baseline_model(config)
  else:
    raise ValueError(f"{workdir}: stage {stage!r} is not a video model (codephys/baseline)")
  variables = trainer.fetch({"params": params, **dict(model_state or {})})
  return model, variables, config, meta


_METHOD_STAGE = {"codephys": "codephys", "physnet": "baseline"}


def load_predictor(workdir: str, *, method: str, batch_size: int = 4) -> eval_lib.Predictor:
  """eval.py's predictor for a checkpoint: video dict -> whole-video waveform."""
  model, variables, config, meta = _load_run(workdir)
  if _METHOD_STAGE.get(method) != meta["stage"]:
    raise ValueError(
        f"{workdir} holds a {meta['stage']!r} run; method {method!r} needs "
        f"{_METHOD_STAGE.get(method)!r}"
    )
  apply = jax.jit(_rppg_fn(model, config.get("input_norm", "standardized")))
  predict_frames = _frames_predictor(apply, variables, config, batch_size=batch_size)
  size = int(config.preprocess.size)

  def predict(video: Mapping[str, Any]) -> np.ndarray:
    frames = video["frames"]
    if frames.shape[1:3] != (size, size):
      raise ValueError(
          f"{video['video_id']}: frames are {frames.shape[1:3]}, the checkpoint at "
          f"{workdir} was trained on {size}x{size} crops; set --config.preprocess.size={size}"
      )
    return predict_frames(frames)

  predict.preprocess = dict(config.preprocess)  # for callers that prepare data to match
  return predict


def export_model(workdir: str) -> dict[str, Any]:
  """Export clip -> rPPG (uint8 [b, T, S, S, 3] -> [b, T]) with jax.export."""
  model, variables, config, meta = _load_run(workdir)
  size = int(config.preprocess.size)

  fn = _rppg_fn(model, config.get("input_norm", "standardized"))
  path = os.path.join(workdir, "export", EXPORT_NAME)
  if jax.process_index() != 0:
    return {}
  return export_lib.export_inference(
      fn, variables, (config.clip_length, size, size, 3), np.uint8, path,
      fs=float(config.preprocess.target_fps),
      description=f"{meta['stage']}: uint8 face clips -> rPPG waveform (standardised)",
  )


# ------------------------------------------------------------------------ comparison


def compare(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Evaluate trained stages and unsupervised methods on every comparison split."""
  eval_cfg = config.eval
  builder = _builder(config)
  methods: dict[str, eval_lib.Predictor] = {}
  for method, stage in (("codephys", "codephys"), ("physnet", "baseline")):
    if stage in config.stages:
      methods[method] = load_predictor(os.path.join(workdir, stage), method=method)
  for name in config.compare.unsupervised:
    methods[name] = eval_lib.unsupervised_predictor(name)
  table = []
  for condition, split in config.compare.splits.items():
    videos = data_lib.VideoSource(builder, split)
    for method, predictor in methods.items():
      results = eval_lib.run_method(videos, predictor, progress=False, total=len(videos))
      result = eval_lib.score(results, eval_cfg)
      m = result.metrics
      out_cfg = ml_collections.ConfigDict(dict(
          method=method, dataset=config.dataset, split=split,
          hr_method=eval_cfg.hr_method, num_waveform_plots=2,
      ))
      eval_lib.write_outputs(os.path.join(workdir, "eval", f"{method}_{split}"), result,
                             results, out_cfg)
      table.append({"method": method, "condition": condition, "split": split,
                    "mae": m["mae"], "rmse": m["rmse"], "pearson": m["pearson"],
                    "snr": m["snr"], "num_videos": m["num_videos"],
                    "robust_mae": m["estimators"]["robust"]["mae"]
                    if "robust" in m["estimators"] else None})
  out = {"dataset": config.dataset, "hr_method": eval_cfg.hr_method, "table": table}
  if jax.process_index() == 0:
    jsonio.write_json(os.path.join(workdir, "results.json"), out)
  return out


def format_table(table: list[Mapping[str, Any]]) -> str:
  lines = ["| method | condition | MAE | RMSE | Pearson | SNR (dB) |",
           "|---|---|---|---|---|---|"]
  for r in table:
    lines.append(f"| {r['method']} | {r['condition']} | {r['mae']:.2f} | {r['rmse']:.2f} | "
                 f"{r['pearson']:.3f} | {r['snr']:.2f} |")
  return "\n".join(lines)


# ---------------------------------------------------------------------------- entry


_RUNNERS: dict[str, Callable[[ml_collections.ConfigDict, str], dict[str, float]]] = {
    "codebook": train_codebook,
    "codephys": functools.partial(train_video_model, stage="codephys"),
    "baseline": functools.partial(train_video_model, stage="baseline"),
}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Run `config.stages` in order, then the comparison if `config.compare.enabled`."""
  distributed.maybe_initialize()
  unknown = [s for s in config.stages if s not in _RUNNERS]
  if unknown:
    raise ValueError(f"unknown stages {unknown}; known: {sorted(_RUNNERS)}")
  summary: dict[str, Any] = {}
  for stage in config.stages:
    stage_dir = os.path.join(workdir, stage)
    logging.info("=== stage %s -> %s", stage, stage_dir)
    summary[stage] = _RUNNERS[stage](config, stage_dir)
  if config.get("compare") is not None and config.compare.get("enabled", False):
    result = compare(config, workdir)
    summary["results"] = result
    print(format_table(result["table"]), flush=True)
  return summary
