"""Training stages by name: each module builds one `Stage` (model, loss, evaluation
hook, frozen parameters); `get_stage` looks one up, as `models.get_backbone` does.

The one table from a method to its stage and model:

  stage / method   model (codephys_jax.models)   what it is
  codebook         ppg_autoencoder               Stage I: PPG autoencoder + VQ codebook
  codephys         codephys                      Stage II: video queries the codebook
  baseline         physnet_regression            PhysNet with a regression head

A stage's name is its config block, its sub-workdir of a training run and, for
the video models, the method name that eval.py, results.json and the README use.
"""

from __future__ import annotations

from codephys_jax.stages import base
from codephys_jax.stages import baseline
from codephys_jax.stages import codebook
from codephys_jax.stages import codephys

Stage = base.Stage
StageSetup = base.StageSetup

STAGES: dict[str, base.Stage] = {
    s.name: s for s in (codebook.STAGE, codephys.STAGE, baseline.STAGE)
}


def get_stage(name: str) -> base.Stage:
  """The registered stage `name`; a clear error naming the known ones otherwise."""
  if name not in STAGES:
    raise ValueError(f"unknown stage {name!r}; known: {sorted(STAGES)}")
  return STAGES[name]
