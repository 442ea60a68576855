"""Stage II: CodePhys, a video encoder whose features query the frozen Stage I codebook.

Needs a finished Stage I run (`codephys.stage1_workdir`, by default the sibling
`codebook/` of this run): its encoder, codebook and decoder are loaded into the
CodePhys parameter tree and kept frozen (`models.codephys.frozen_subtrees`).

Loss: w.neg_pearson * (negative Pearson) + w.feature * feature loss (queries vs
the ground-truth quantised tokens) + w.distill * soft distillation (per-cell
SmoothL1 to the teacher, weighted by attention + 0.5) + w.freq_ce / w.freq_kl *
frequency cross-entropy / label-distribution KL, + w.code_ce * code
cross-entropy on the ground-truth Stage I indices (every query mode; distance
logits outside 'transformer'), - w.usage_entropy * batch code entropy. Against
code collapse, `codephys.soft_query_warmup_steps` ramps the decoded codes from
the soft mixture of all codes to the matched ones.

Backbone warm start (`codephys.init_backbone`): "" trains the video backbone
from scratch (the paper); "physnet" (the sibling `physnet/` run, which must then
come first in `config.stages`) or a workdir path starts it, BatchNorm statistics
included, from that run's selected checkpoint of the same backbone (its last
one when the run selected nothing: a `refit` pass). The queries
then start from features that already follow the pulse, and Stage II learns the
mapping to the codes instead of finding the pulse through a frozen decoder.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from codephys_jax import checkpointing
from codephys_jax import losses
from codephys_jax import models
from codephys_jax import representations
from codephys_jax import trainer
from codephys_jax.stages import base

NAME = "codephys"
MODEL = "codephys"


def _stage1_fields(stage1_config: Mapping[str, Any]) -> dict[str, Any]:
  """CodePhys fields that must mirror the Stage I autoencoder."""
  m = dict(stage1_config["codebook"]["model"])
  keys = (
      "num_codes",
      "code_dim",
      "hidden",
      "num_res_blocks",
      "res_kernel",
      "down_kernel",
      "downsample",
  )
  return {k: m[k] for k in keys if k in m}


def stage1_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Where the Stage I run lives: explicit config, else the sibling codebook/."""
  explicit = config[NAME].get("stage1_workdir")
  return explicit or os.path.join(os.path.dirname(workdir.rstrip("/")), "codebook")


def make_model(
    config: ml_collections.ConfigDict, stage1_config: Mapping[str, Any]
) -> models.CodePhys:
  """The model of the run config's `codephys` block, shaped like its Stage I run."""
  fields = dict(config[NAME].model)
  fields.update(_stage1_fields(stage1_config))
  fields["backbone_kwargs"] = dict(fields.get("backbone_kwargs") or {})
  return models.get_model(MODEL, **fields)


def load_stage1(stage1_workdir: str) -> tuple[dict[str, Any], dict[str, Any]]:
  """(Stage I params in CodePhys naming, the Stage I run's config) from its best checkpoint."""
  params, state, meta = checkpointing.load_params(
      os.path.join(stage1_workdir, "checkpoints"), which="best"
  )
  subtrees = models.stage1_subtrees({"params": params, **dict(state or {})})
  return trainer.fetch(subtrees), meta["config"]


def make_loss(model, config: ml_collections.ConfigDict) -> trainer.LossFn:
  """The Stage II losses (module docstring), weighted by `codephys.loss_weights`."""
  cfg = config[NAME]
  w = cfg.loss_weights
  warmup = float(cfg.get("soft_query_warmup_steps", 0))

  def loss_fn(params, model_state, batch, rng, step):
    variables = {"params": params, **model_state}
    clip = base.normalize_frames(batch["frames"], config.input_norm)
    ppg = representations.label_target(batch["ppg"], config.input_norm)
    # Soft-query warm-up: decode a blend of the matched and the soft codes,
    # all soft at step 0 and the matching mode alone after `warmup` steps.
    soft_mix = jnp.clip(1.0 - step / warmup, 0.0, 1.0) if warmup > 0 else 0.0
    out, new_state = model.apply(
        variables,
        clip,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": rng},
        soft_mix=soft_mix,
    )
    tg = model.apply(variables, ppg, method=model.targets)
    npc = losses.neg_pearson(out["rppg"], ppg)
    feat = losses.feature_loss(out["queries"], tg["target_quantized"])
    # The teacher is a fixed target: gradients through it would let both sides
    # collapse to zero, which the distillation loss cannot tell from agreement.
    # The attention map is learned through the query path; letting this loss
    # train it would simply drive w to 0 to shrink its own (w + 0.5) weights.
    distill = losses.soft_distillation(
        out["features"],
        jax.lax.stop_gradient(tg["teacher"]),
        out["attention"],
        detach_attention=True,
    )
    ce, kl = base.frequency_terms(out["rppg"], batch["ppg"], config)
    loss = (
        w.neg_pearson * npc
        + w.feature * feat
        + w.distill * distill
        + w.freq_ce * ce
        + w.freq_kl * kl
    )
    target_perplexity, target_usage = models.code_statistics(tg["target_indices"], model.num_codes)
    metrics = {
        "neg_pearson": npc,
        "feature": feat,
        "distill": distill,
        "freq_ce": ce,
        "freq_kl": kl,
        "perplexity": out["perplexity"],
        "usage": out["usage"],
        "target_perplexity": target_perplexity,
        "target_usage": target_usage,
        "soft_mix": jnp.asarray(soft_mix, jnp.float32),
        "attention_mean": jnp.mean(out["attention"]),
    }
    if out["code_logits"] is not None:
      code_ce = losses.code_cross_entropy(out["code_logits"], tg["target_indices"])
      entropy = losses.code_usage_entropy(out["code_logits"])
      loss = loss + w.code_ce * code_ce - w.get("usage_entropy", 0.0) * entropy
      metrics["code_ce"] = code_ce
      metrics["usage_entropy"] = entropy
      metrics["code_acc"] = jnp.mean(out["indices"] == tg["target_indices"])
    return loss, ({**model_state, **new_state}, metrics)

  return loss_fn


def backbone_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The run whose backbone starts Stage II ('' = none): `codephys.init_backbone`."""
  init = config[NAME].get("init_backbone") or ""
  if not init:
    return ""
  if init == "physnet":
    return os.path.join(os.path.dirname(workdir.rstrip("/")), "physnet")
  return init


def _dependencies(
    config: ml_collections.ConfigDict, workdir: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
  s1_dir = stage1_dir(config, workdir)
  stage1 = load_stage1(s1_dir)
  meta = {"stage1_workdir": os.path.abspath(s1_dir), "stage1_config": stage1[1]}
  init_dir = backbone_dir(config, workdir)
  warm = None
  if init_dir:
    model = config[NAME].model
    warm, source = base.load_backbone(
        init_dir,
        model.backbone,
        dict(model.backbone_kwargs),
        option=f"{NAME}.init_backbone",
        hint="with init_backbone='physnet', put 'physnet' before 'codephys' in config.stages",
    )
    meta.update(source)
  return (*stage1, warm), meta


def setup(
    config: ml_collections.ConfigDict,
    builder,
    mesh,
    stage1: tuple[Any, ...] | None,
) -> base.StageSetup:
  """`stage1` = (Stage I subtrees, Stage I config[, warm-start backbone]), see
  `load_stage1` and `base.load_backbone`."""
  if stage1 is None:
    raise ValueError("the codephys stage needs stage1=(subtrees, stage1_config)")
  subtrees, stage1_config = stage1[:2]
  model = make_model(config, stage1_config)
  # What stays frozen is the model's definition (models.codephys.FROZEN).
  return base.video_setup(
      config,
      builder,
      mesh,
      stage=NAME,
      model=model,
      loss_fn=make_loss(model, config),
      subtrees=subtrees,
      frozen=model.frozen_subtrees(),
      warm_start=stage1[2] if len(stage1) > 2 else None,
  )


def _build_model(config: ml_collections.ConfigDict, meta: Mapping[str, Any]):
  return make_model(config, meta["stage1_config"])


STAGE = base.Stage(
    name=NAME,
    model=MODEL,
    video_model=True,
    build_model=_build_model,
    setup=setup,
    dependencies=_dependencies,
)
