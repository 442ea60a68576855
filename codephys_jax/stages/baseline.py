"""The ablation baseline: the same video backbone with a plain regression head
(PhysNet), trained with negative Pearson against the PPG, no codebook, nothing frozen."""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from codephys_jax import losses
from codephys_jax import models
from codephys_jax.stages import base


def baseline_model(config: ml_collections.ConfigDict):
  fields = dict(config.baseline.model)
  fields["backbone_kwargs"] = dict(fields.get("backbone_kwargs") or {})
  return models.get_model("physnet_regression", **fields)


def _baseline_loss(model, input_norm: str):
  def loss_fn(params, model_state, batch, rng, step):
    del step
    clip = base.normalize_frames(batch["frames"], input_norm)
    out, new_state = model.apply(
        {"params": params, **model_state}, clip, train=True, mutable=["batch_stats"],
        rngs={"dropout": rng},
    )
    npc = losses.neg_pearson(out["rppg"], batch["ppg"])
    return npc, ({**model_state, **new_state}, {"neg_pearson": npc})

  return loss_fn


def _setup(config: ml_collections.ConfigDict, builder, mesh, dependencies: None
           ) -> base.StageSetup:
  del dependencies
  model = baseline_model(config)
  return base.video_setup(config, builder, mesh, stage="baseline", model=model,
                          loss_fn=_baseline_loss(model, config.input_norm), subtrees={},
                          frozen=())


def _build_model(config: ml_collections.ConfigDict, meta: Mapping[str, Any]):
  del meta
  return baseline_model(config)


STAGE = base.Stage(
    name="baseline", model="physnet_regression", video_model=True, build_model=_build_model,
    setup=_setup,
)
