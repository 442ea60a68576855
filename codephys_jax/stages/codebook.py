"""Stage I: the PPG autoencoder and its VQ codebook, learned from ground-truth PPG only.

Loss: w.mse * MSE + w.neg_pearson * (negative Pearson) + w.vq * VQ loss between
the reconstruction and the PPG clip; after every update, dead codes are re-seeded
from the batch's encoder outputs. Evaluated by reconstruction of held-out PPG
clips (`recon_mse` picks the best checkpoint). Nothing is frozen.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from codephys_jax import data as data_lib
from codephys_jax import losses
from codephys_jax import models
from codephys_jax import representations
from codephys_jax import trainer
from codephys_jax.stages import base

NAME = "codebook"
MODEL = "ppg_autoencoder"


def make_model(config: ml_collections.ConfigDict) -> models.PPGAutoencoder:
  """The Stage I model of the run config's `codebook` block."""
  return models.get_model(MODEL, **dict(config[NAME].model))


def make_loss(model, config: ml_collections.ConfigDict) -> trainer.LossFn:
  """Reconstruction (MSE, negative Pearson) + VQ loss, weighted by `codebook.loss_weights`."""
  w = config[NAME].loss_weights
  input_norm = config.input_norm

  def loss_fn(params, model_state, batch, rng, step):
    del rng, step
    # The codebook is learned on the representation's target (e.g. PPG differences).
    ppg = representations.label_target(batch["ppg"], input_norm)
    out, new_state = model.apply(
        {"params": params, **model_state}, ppg, train=True, mutable=list(model_state)
    )
    mse = losses.mse(out["recon"], ppg)
    npc = losses.neg_pearson(out["recon"], ppg)
    loss = w.mse * mse + w.neg_pearson * npc + w.vq * out["vq_loss"]
    metrics = {
        "mse": mse,
        "neg_pearson": npc,
        "vq_loss": out["vq_loss"],
        "perplexity": out["perplexity"],
        "usage": out["usage"],
    }
    return loss, (dict(new_state), metrics)

  return loss_fn


def make_restart(model, threshold: float, input_norm: str = "standardized") -> trainer.PostUpdateFn:
  """post_update: re-seed dead codes from this batch's encoder outputs (EMA rule)."""

  def post_update(state, batch, rng):
    if "vq_state" not in state.model_state:
      return state
    z_e = model.apply(
        state.variables, representations.label_target(batch["ppg"], input_norm), method=model.encode
    )
    z_flat = z_e.reshape(-1, z_e.shape[-1])
    vq_state = models.restart_dead_codes(
        state.model_state["vq_state"], z_flat, rng, threshold=threshold
    )
    return state.replace(model_state={**state.model_state, "vq_state": vq_state})

  return post_update


def _train_clips(config: ml_collections.ConfigDict, train_videos):
  """(clips, host augmentation or None, input pipeline) of Stage I.

  `codebook.speed_augment`: the PPG clips get the speed step of `config.augment`
  (its `speed_range`, `target_hr_bpm` and `target_hr_scale`, whether or not `augment.enabled`;
  `augment.make_ppg_speed_augment`), so the codebook covers the rates the video
  models see. It runs on the host: input_pipeline 'auto' becomes 'host', 'device'
  is refused.
  """
  cfg = config[NAME]
  input_pipeline = config.get("input_pipeline", "host")
  if not cfg.get("speed_augment", False):
    clips, _ = base.clip_source(train_videos, config.clip_length, cfg.clip_stride)
    return clips, None, input_pipeline
  if input_pipeline == "device":
    raise ValueError(
        "codebook.speed_augment runs on the host; set input_pipeline='host' or 'auto', "
        "or codebook.speed_augment=False"
    )
  speed = dict(config.augment.to_dict(), enabled=True)  # whatever augment.enabled says
  clips, augment = base.clip_source(
      train_videos, config.clip_length, cfg.clip_stride, speed, labels_only=True
  )
  return clips, augment, "host"


def setup(config: ml_collections.ConfigDict, builder, mesh, dependencies: None) -> base.StageSetup:
  del dependencies
  cfg = config[NAME]
  model = make_model(config)
  train_videos, _ = data_lib.train_val_videos(builder, config)
  clips, augment, input_pipeline = _train_clips(config, train_videos)
  example = {"ppg": np.zeros((cfg.batch_size, config.clip_length), np.float32)}
  state = trainer.create_train_state(
      init_fn=lambda r, b: model.init(r, b["ppg"], train=False),
      tx=base.optimizer(cfg),
      rng=jax.random.key(config.seed),
      mesh=mesh,
      example_batch=example,
  )
  return base.StageSetup(
      model=model,
      state=state,
      loss_fn=make_loss(model, config),
      post_update=make_restart(model, cfg.model.get("dead_code_threshold", 0.1), config.input_norm),
      make_iterator=base.train_iterator(
          clips,
          augment,
          batch_size=cfg.batch_size,
          seed=config.seed,
          keys=("ppg",),
          mesh=mesh,
          input_pipeline=input_pipeline,
      ),
  )


def make_eval(stage_setup: base.StageSetup, config: ml_collections.ConfigDict, builder):
  """on_eval: reconstruction MSE / Pearson and code perplexity on the eval split."""
  cfg = config[NAME]
  model = stage_setup.model
  _, val_videos = data_lib.train_val_videos(builder, config)
  eval_clips, _ = base.clip_source(val_videos, config.clip_length, None)
  apply_eval = jax.jit(lambda v, x: model.apply(v, x, train=False))

  def on_eval(state, step):
    del step
    variables = trainer.fetch(state.variables)
    mse, r, perp, n = 0.0, 0.0, 0.0, 0
    for batch, real in data_lib.eval_batches(eval_clips, cfg.batch_size):
      ppg = np.asarray(representations.label_target(batch["ppg"], config.input_norm))
      out = apply_eval(variables, ppg)
      rec = np.asarray(out["recon"])[:real]
      ref = ppg[:real]
      mse += float(np.sum(np.mean((rec - ref) ** 2, axis=1)))
      r += float(np.sum([np.corrcoef(a, b)[0, 1] for a, b in zip(rec, ref)]))
      perp += float(out["perplexity"]) * real
      n += real
    return {"recon_mse": mse / n, "recon_pearson": r / n, "perplexity": perp / n}

  return on_eval


def _build_model(config: ml_collections.ConfigDict, meta: Mapping[str, Any]):
  del meta
  return make_model(config)


STAGE = base.Stage(
    name=NAME,
    model=MODEL,
    video_model=False,
    build_model=_build_model,
    setup=setup,
    on_eval=make_eval,
    best_metric="recon_mse",
)
