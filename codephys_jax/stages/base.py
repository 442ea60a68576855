"""What every training stage shares: the `Stage` record, model input, data and optimiser.

A stage module (`codebook`, `codephys`, `physnet`) builds one `Stage`: its
model, its loss, its evaluation hook and its frozen parameters. The training core
(`codephys_jax.train_lib`) only ever goes through that record.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np
import optax

from codephys_jax import checkpointing
from codephys_jax import data as data_lib
from codephys_jax import losses
from codephys_jax import models
from codephys_jax import representations
from codephys_jax import trainer

# ----------------------------------------------------------------------------- inputs


def normalize_frames(frames: jax.Array, mode: str = "standardized") -> jax.Array:
  """uint8 clips [B, T, H, W, 3] -> float32 model input (`representations`)."""
  return representations.normalize_frames(frames, mode)


def frequency_terms(rppg: jax.Array, ppg: jax.Array, config: ml_collections.ConfigDict):
  """(frequency CE, KL) of a video model's output `rppg` [B, T] against the heart
  rate of the raw PPG clips `ppg` [B, T] (`losses.frequency_ce_loss`); the output is
  turned into a waveform first (`representations.to_waveform`)."""
  fs = float(config.preprocess.target_fps)
  hr = losses.hr_from_ppg_jax(ppg, fs)
  return losses.frequency_ce_loss(representations.to_waveform(rppg, config.input_norm), hr, fs)


def clip_source(
    videos,
    clip_length: int,
    stride: int | None,
    augment_cfg: ml_collections.ConfigDict | None = None,
    *,
    labels_only: bool = False,
):
  """(clips of `videos`, the augmentation of `augment_cfg` or None).

  `labels_only`: the PPG-only speed step (`augment.make_ppg_speed_augment`, Stage I)
  instead of the full clip augmentation (`augment.make_augment`).
  """
  augment = None
  kwargs = {}
  if augment_cfg is not None and augment_cfg.get("enabled", False):
    from codephys_jax import augment as augment_lib

    aug_cfg = augment_lib.AugmentConfig.from_config(augment_cfg)
    kwargs["source_length"] = augment_lib.required_source_length(aug_cfg, clip_length)
    make = augment_lib.make_ppg_speed_augment if labels_only else augment_lib.make_augment
    augment = make(aug_cfg, clip_length)
  clips = data_lib.ClipSource(videos, clip_length=clip_length, stride=stride, **kwargs)
  return clips, augment


def train_iterator(
    clips,
    augment,
    *,
    batch_size: int,
    seed: int,
    keys: tuple[str, ...],
    mesh,
    input_pipeline: str = "host",
    augment_cfg: ml_collections.ConfigDict | None = None,
) -> Callable[[int], Any]:
  """make_iterator(start_step) for trainer.train_loop (deterministic resume).

  input_pipeline 'host': grain + NumPy augmentation (`augment`), local NumPy batches;
  'device': videos resident on the devices, clips cut and augmented (`augment_cfg`)
  by jitted code (`codephys_jax.device_input`), global batches already sharded;
  'auto': 'device' where the split fits its memory budget and the augmentation
  has no host-only steps (`device_input.refuse_host_only`), else 'host'.
  """
  trainer.local_batch_size(batch_size, mesh)  # validates divisibility early
  if isinstance(clips, data_lib.ClipMixture) and input_pipeline != "host":
    # The device pipeline keeps one split resident; a mixture is read on the host.
    if input_pipeline == "device":
      raise ValueError(
          "input_pipeline='device' reads one split; a co-training mixture "
          f"({clips!r}) needs input_pipeline='host' or 'auto'"
      )
    logging.info("input_pipeline=auto: host input (a co-training mixture)")
    input_pipeline = "host"
  if input_pipeline in ("device", "auto"):
    from codephys_jax import device_input

    try:
      return device_input.from_config(
          clips, mesh, keys=keys, batch_size=batch_size, seed=seed, augment_cfg=augment_cfg
      )
    except device_input.DoesNotFit as e:
      if input_pipeline == "device":
        raise
      logging.info("input_pipeline=auto: host input (%s)", e)
  elif input_pipeline != "host":
    raise ValueError(
        f"unknown input_pipeline {input_pipeline!r}; known: 'host', 'device', " "'auto'"
    )
  spec = data_lib.PipelineSpec(batch_size=batch_size, seed=seed)

  def make_iterator(start_step: int):
    it = data_lib.train_pipeline(
        clips,
        spec,
        start_step=start_step,
        augment=augment,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    return ({k: b[k] for k in keys} for b in it)

  return make_iterator


def optimizer(
    cfg: ml_collections.ConfigDict, labels: Any | None = None
) -> optax.GradientTransformation:
  """AdamW on a warm-up + cosine schedule with gradient clipping; parameters labelled
  'frozen' in `labels` (see `models.param_labels`) are never updated."""
  total = max(2, int(cfg.num_steps))
  warmup = max(1, min(int(cfg.warmup_steps), total // 2))
  schedule = optax.warmup_cosine_decay_schedule(
      0.0,
      cfg.learning_rate,
      warmup,
      total,
      end_value=cfg.learning_rate * cfg.get("final_lr_fraction", 0.1),
  )
  tx = optax.chain(
      optax.clip_by_global_norm(cfg.get("grad_clip", 1.0)),
      optax.adamw(schedule, weight_decay=cfg.weight_decay),
  )
  if labels is None:
    return tx
  return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)


# ------------------------------------------------------------------- warm starts

BACKBONE = "video_backbone"  # the backbone's name in CodePhys and PhysNetRegression


def load_backbone(
    run_dir: str,
    backbone: str,
    backbone_kwargs: Mapping[str, Any],
    *,
    option: str,
    hint: str = "",
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
  """({collection: {'video_backbone': subtree}}, checkpoint meta naming it) of the
  selected checkpoint of the video-model run in `run_dir` (a `physnet/` or
  `codephys/` stage directory), checked to be the same backbone; errors name
  `option`, the config field that asked for it."""
  ckpt = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(ckpt):
    raise FileNotFoundError(
        f"{option}: no checkpoints in {ckpt} (train that run first"
        + (f"; {hint})" if hint else ")")
    )
  params, state, meta = checkpointing.load_params(ckpt, which="best")
  other = dict(meta["config"].get(meta.get("stage", ""), {}).get("model", {}))
  theirs = (other.get("backbone", "physnet"), dict(other.get("backbone_kwargs") or {}))
  if theirs != (backbone, dict(backbone_kwargs)):
    raise ValueError(
        f"{option}: {run_dir} has backbone {theirs[0]!r} {theirs[1]}, "
        f"this run {backbone!r} {dict(backbone_kwargs)}"
    )
  if BACKBONE not in params:
    raise ValueError(f"{option}: {run_dir} has no {BACKBONE!r} parameters")
  out = {"params": {BACKBONE: params[BACKBONE]}}
  for collection, tree in dict(state or {}).items():
    if BACKBONE in tree:
      out[collection] = {BACKBONE: tree[BACKBONE]}
  source = {
      "init_backbone_workdir": os.path.abspath(run_dir),
      "init_backbone_step": int(meta["step"]),
  }
  return trainer.fetch(out), source


# ------------------------------------------------------------------------- the record


@dataclasses.dataclass
class StageSetup:
  """A stage ready for `trainer.train_loop` (shared by training and benchmarks)."""

  model: Any
  state: trainer.TrainState
  loss_fn: trainer.LossFn
  post_update: trainer.PostUpdateFn | None
  make_iterator: Callable[[int], Any]
  frozen: tuple[str, ...] = ()


# (config, run workdir) -> (what `setup` needs besides the config, extra checkpoint meta)
Dependencies = Callable[[ml_collections.ConfigDict, str], tuple[Any, Mapping[str, Any]]]
# (setup, config, builder) -> on_eval(state, step) -> metrics
EvalHook = Callable[[StageSetup, ml_collections.ConfigDict, Any], Callable[[Any, int], Any]]


def no_dependencies(config: ml_collections.ConfigDict, workdir: str) -> tuple[None, dict[str, Any]]:
  del config, workdir
  return None, {}


@dataclasses.dataclass(frozen=True)
class Stage:
  """One training stage, as the training core, inference and the table see it.

  Attributes:
    name: the stage's name: its block in the config, its sub-workdir, and (for a
      video model) the method name of eval.py, results.json and the comparison table.
    model: the model's name in `codephys_jax.models.MODELS`.
    video_model: whether the trained model maps face clips to rPPG (then it is
      selected by whole-video HR MAE, exported, and evaluable as a method).
    build_model: (run config, checkpoint meta) -> the Flax model.
    setup: (config, builder, mesh, dependencies) -> StageSetup.
    dependencies: (config, workdir) -> (dependencies for `setup`, extra meta
      recorded in the checkpoint).
    on_eval: the stage's own evaluation hook; None for video models, which all
      use the whole-video HR evaluation of the training core.
    best_metric: the metric (lower is better) that picks the best checkpoint.
  """

  name: str
  model: str
  video_model: bool
  build_model: Callable[[ml_collections.ConfigDict, Mapping[str, Any]], Any]
  setup: Callable[..., StageSetup]
  dependencies: Dependencies = no_dependencies
  on_eval: EvalHook | None = None
  best_metric: str = "mae"


def training_clips(config: ml_collections.ConfigDict, builder, clip_stride: int | None):
  """(training clips, their augmentation) of a video stage: the clips of the
  training subjects (the held-out ones select the checkpoint, never test), mixed
  with the `cotrain` dataset's clips at `cotrain.weight` when one is set."""
  train_videos, _ = data_lib.train_val_videos(builder, config)
  clips, augment = clip_source(train_videos, config.clip_length, clip_stride, config.get("augment"))
  cotrain = data_lib.cotrain_videos(config, builder)
  if cotrain is None:
    return clips, augment
  # Both sources get the same augmentation (it is applied per clip, after mixing).
  extra, _ = clip_source(cotrain[0], config.clip_length, clip_stride, config.get("augment"))
  return data_lib.ClipMixture((clips, extra), (1.0 - cotrain[1], cotrain[1])), augment


def video_setup(
    config: ml_collections.ConfigDict,
    builder,
    mesh,
    *,
    stage: str,
    model,
    loss_fn: trainer.LossFn,
    subtrees: Mapping[str, Any] | None = None,
    frozen: tuple[str, ...] = (),
    warm_start: Mapping[str, Mapping[str, Any]] | None = None,
) -> StageSetup:
  """StageSetup of a video model: face clips (augmented if configured), its initial
  state with `subtrees` merged into the params and `warm_start` ({collection:
  {name: subtree}} of `load_backbone`: parameters and e.g. BatchNorm statistics)
  merged into the variables over them, `frozen` masked in the optimiser."""
  cfg = config[stage]
  if warm_start:
    logging.info("%s: video backbone warm-started (%s)", stage, sorted(warm_start))
  representations.check_fps(config.input_norm, config.preprocess.target_fps)
  clips, augment = training_clips(config, builder, cfg.clip_stride)
  size = int(config.preprocess.size)
  example = {
      "frames": np.zeros((cfg.batch_size, config.clip_length, size, size, 3), np.uint8),
      "ppg": np.zeros((cfg.batch_size, config.clip_length), np.float32),
  }

  def init_fn(r, b):
    variables = dict(model.init(r, normalize_frames(b["frames"], config.input_norm), train=False))
    variables["params"] = {**variables["params"], **(subtrees or {})}
    for collection, trees in (warm_start or {}).items():
      variables[collection] = {**variables[collection], **trees}
    return variables

  labels = None
  if frozen:
    abstract = jax.eval_shape(init_fn, jax.random.key(0), example)
    labels = models.param_labels(abstract["params"], frozen=frozen)
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optimizer(cfg, labels),
      rng=jax.random.key(config.seed),
      mesh=mesh,
      example_batch=example,
      ema_decay=float(cfg.get("ema_decay", 0.0)),
  )
  return StageSetup(
      model=model,
      state=state,
      loss_fn=loss_fn,
      post_update=None,
      make_iterator=train_iterator(
          clips,
          augment,
          batch_size=cfg.batch_size,
          seed=config.seed,
          keys=("frames", "ppg"),
          mesh=mesh,
          input_pipeline=config.get("input_pipeline", "host"),
          augment_cfg=config.get("augment"),
      ),
      frozen=tuple(frozen),
  )
