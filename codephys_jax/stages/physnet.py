"""The `physnet` stage, the ablation baseline: the same video backbone with a plain
regression head (PhysNet, model `physnet_regression`), trained with negative
Pearson against the PPG; no codebook, nothing frozen.

Backbone warm start (`physnet.init_backbone`): "" trains from scratch; the path
of another run's video-model stage directory (`W/physnet` or `W/codephys` of a
finished run, e.g. one trained on synthetic data) starts the backbone, BatchNorm
statistics included, from that run's selected checkpoint of the same backbone:
fine-tuning. The regression head starts fresh.
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from codephys_jax import losses
from codephys_jax import models
from codephys_jax import representations
from codephys_jax import trainer
from codephys_jax.stages import base

NAME = "physnet"
MODEL = "physnet_regression"


def make_model(config: ml_collections.ConfigDict):
  """The model of the run config's `physnet` block."""
  fields = dict(config[NAME].model)
  fields["backbone_kwargs"] = dict(fields.get("backbone_kwargs") or {})
  return models.get_model(MODEL, **fields)


def make_loss(model, config: ml_collections.ConfigDict) -> trainer.LossFn:
  """w.neg_pearson * negative Pearson against the PPG + w.freq_ce / w.freq_kl *
  the frequency cross-entropy / label-distribution KL of the output spectrum
  (`physnet.loss_weights`; without that block, negative Pearson alone)."""
  input_norm = config.input_norm
  w = dict(config[NAME].get("loss_weights") or {"neg_pearson": 1.0})

  def loss_fn(params, model_state, batch, rng, step):
    del step
    clip = base.normalize_frames(batch["frames"], input_norm)
    out, new_state = model.apply(
        {"params": params, **model_state},
        clip,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": rng},
    )
    npc = losses.neg_pearson(out["rppg"], representations.label_target(batch["ppg"], input_norm))
    metrics = {"neg_pearson": npc}
    loss = w.get("neg_pearson", 1.0) * npc
    if w.get("freq_ce", 0.0) or w.get("freq_kl", 0.0):
      ce, kl = base.frequency_terms(out["rppg"], batch["ppg"], config)
      loss = loss + w.get("freq_ce", 0.0) * ce + w.get("freq_kl", 0.0) * kl
      metrics.update(freq_ce=ce, freq_kl=kl)
    return loss, ({**model_state, **new_state}, metrics)

  return loss_fn


def _dependencies(
    config: ml_collections.ConfigDict, workdir: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
  init_dir = config[NAME].get("init_backbone") or ""
  if not init_dir:
    return None, {}
  if init_dir in ("physnet", "codephys"):
    raise ValueError(
        f"physnet.init_backbone={init_dir!r}: give the path of a finished run's stage "
        "directory (e.g. W/physnet of a configs/pretrain_synthetic.py run); the "
        "sibling shorthand is codephys.init_backbone's only"
    )
  model = config[NAME].model
  return base.load_backbone(
      init_dir,
      model.backbone,
      dict(model.get("backbone_kwargs") or {}),
      option=f"{NAME}.init_backbone",
  )


def setup(
    config: ml_collections.ConfigDict,
    builder,
    mesh,
    dependencies: Mapping[str, Any] | None,
) -> base.StageSetup:
  """`dependencies`: None, or the warm-start backbone of `_dependencies`
  ({collection: {'video_backbone': subtree}})."""
  model = make_model(config)
  return base.video_setup(
      config,
      builder,
      mesh,
      stage=NAME,
      model=model,
      loss_fn=make_loss(model, config),
      warm_start=dependencies,
  )


def _build_model(config: ml_collections.ConfigDict, meta: Mapping[str, Any]):
  del meta
  return make_model(config)


STAGE = base.Stage(
    name=NAME,
    model=MODEL,
    video_model=True,
    build_model=_build_model,
    setup=setup,
    dependencies=_dependencies,
)
