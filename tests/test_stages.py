"""The stage registry: one name per method, from the CLI to the table."""

import ml_collections
import pytest

from codephys_jax import eval_lib
from codephys_jax import models
from codephys_jax import stages
from configs import default as default_config


def test_one_table_from_method_to_stage_to_model():
  table = {name: (s.model, s.video_model) for name, s in stages.STAGES.items()}
  assert table == {
      "codebook": ("ppg_autoencoder", False),
      "codephys": ("codephys", True),
      "physnet": ("physnet_regression", True),
  }
  assert stages.METHODS == ("codephys", "physnet")
  assert all(s.model in models.MODELS for s in stages.STAGES.values())
  # The default run trains every stage, each from its own config block.
  config = default_config.get_config()
  assert tuple(config.stages) == tuple(stages.STAGES)
  assert all(name in config for name in stages.STAGES)


def test_eval_methods_need_checkpoints_exactly_for_trained_models():
  assert [
      m for m in ("pos", "chrom", "codephys", "physnet", "PhysNet") if eval_lib.needs_checkpoint(m)
  ] == ["codephys", "physnet", "PhysNet"]
  with pytest.raises(ValueError, match="unknown method 'baseline'"):
    eval_lib.make_predictor(ml_collections.ConfigDict(dict(method="baseline")))
  with pytest.raises(ValueError, match="needs --config.checkpoint"):
    eval_lib.make_predictor(ml_collections.ConfigDict(dict(method="codephys", checkpoint="")))


def test_unknown_and_renamed_stage_names():
  with pytest.raises(ValueError, match="unknown stage 'baseline' \\(renamed to 'physnet'\\)"):
    stages.get_stage("baseline")
  with pytest.raises(ValueError, match="unknown stage 'nope'"):
    stages.get_stage("nope")


def test_runs_saved_under_the_old_baseline_name_still_load():
  model_block = {"model": {"backbone": "physnet", "backbone_kwargs": {"base_width": 4}}}
  stage, config = stages.stage_of_run({"stage": "baseline", "config": {"baseline": model_block}})
  assert stage.name == "physnet"
  model = stage.build_model(config, {})
  assert isinstance(model, models.PhysNetRegression)
  assert dict(model.backbone_kwargs) == {"base_width": 4}
