"""Training stages by name: each module builds one `Stage` (model, loss, evaluation
hook, frozen parameters); `get_stage` looks one up, as `models.get_backbone` does.

The one table from a method to its stage and model (`METHODS` are the stages
whose model turns face video into rPPG):

  method = stage   model (codephys_jax.models)   what it is
  codebook         ppg_autoencoder               Stage I: PPG autoencoder + VQ codebook
  codephys         codephys                      Stage II: video queries the codebook
  physnet          physnet_regression            the baseline: PhysNet, regression head

A stage's name is its block in the config, its sub-workdir of a training run
and, for a video model, the method name of eval.py, results.json and the robustness
table.
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from codephys_jax.stages import base
from codephys_jax.stages import codebook
from codephys_jax.stages import codephys
from codephys_jax.stages import physnet

Stage = base.Stage
StageSetup = base.StageSetup

STAGES: dict[str, base.Stage] = {s.name: s for s in (codebook.STAGE, codephys.STAGE, physnet.STAGE)}
METHODS: tuple[str, ...] = tuple(name for name, s in STAGES.items() if s.video_model)

# Runs trained before the baseline stage took its method's name.
_RENAMED = {"baseline": physnet.NAME}


def get_stage(name: str) -> base.Stage:
  """The registered stage `name`; a clear error naming the known ones otherwise."""
  if name not in STAGES:
    hint = f" (renamed to {_RENAMED[name]!r})" if name in _RENAMED else ""
    raise ValueError(f"unknown stage {name!r}{hint}; known: {sorted(STAGES)}")
  return STAGES[name]


def stage_of_run(meta: Mapping[str, Any]) -> tuple[base.Stage, ml_collections.ConfigDict]:
  """(stage, run config) of a checkpoint's meta, old stage names included."""
  config = ml_collections.ConfigDict(meta["config"])
  name = meta["stage"]
  if name in _RENAMED:
    name = _RENAMED[name]
    with config.unlocked():
      config[name] = config[meta["stage"]]
  return get_stage(name), config
