"""Models: Stage I PPG autoencoder, video backbones, Stage II CodePhys, and a name registry."""

from typing import Any

import flax.linen as nn

from codephys_jax.models.cell_tcn import CellTCNBackbone
from codephys_jax.models.vector_quantizer import VQOutput, VectorQuantizer, code_statistics, restart_dead_codes
from codephys_jax.models.codephys import FROZEN, CodePhys, param_labels, stage1_subtrees
from codephys_jax.models.physnet import BACKBONES, PhysNetBackbone, PhysNetRegression, get_backbone
from codephys_jax.models.ppg_autoencoder import PPGAutoencoder, PPGDecoder, PPGEncoder

MODELS = {
    "ppg_autoencoder": PPGAutoencoder,
    "codephys": CodePhys,
    "physnet_regression": PhysNetRegression,
}


def get_model(name: str, /, **kwargs: Any) -> nn.Module:
  """Build a registered model by name with its constructor fields as kwargs."""
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; registered: {sorted(MODELS)}")
  return MODELS[name](**kwargs)


__all__ = [
    "BACKBONES",
    "CellTCNBackbone",
    "FROZEN",
    "MODELS",
    "CodePhys",
    "PPGAutoencoder",
    "PPGDecoder",
    "PPGEncoder",
    "PhysNetBackbone",
    "PhysNetRegression",
    "VQOutput",
    "VectorQuantizer",
    "code_statistics",
    "get_backbone",
    "get_model",
    "param_labels",
    "restart_dead_codes",
    "stage1_subtrees",
]
