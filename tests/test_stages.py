"""The stage registry: one name per method, from the CLI to the table."""

import jax
import ml_collections
import numpy as np
import pytest

from codephys_jax import eval_lib
from codephys_jax import methods
from codephys_jax import models
from codephys_jax import stages
from codephys_jax.stages import physnet as physnet_stage
from configs import common
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
  # The default run trains every stage, each from its own config block, the
  # baseline before CodePhys (whose backbone starts from it).
  config = default_config.get_config()
  assert sorted(config.stages) == sorted(stages.STAGES)
  assert config.codephys.init_backbone == "physnet"
  assert list(config.stages).index("physnet") < list(config.stages).index("codephys")
  assert all(name in config for name in stages.STAGES)
  # The ablation differs only in the head: one backbone, the same fields.
  assert config.codephys.model.backbone == config.physnet.model.backbone
  assert dict(config.codephys.model.backbone_kwargs) == dict(config.physnet.model.backbone_kwargs)


def test_eval_methods_need_checkpoints_exactly_for_trained_models():
  assert [
      m for m in ("pos", "chrom", "codephys", "physnet", "PhysNet") if methods.needs_checkpoint(m)
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


def test_physnet_loss_adds_the_frequency_terms_it_is_given():
  """physnet.loss_weights: the frequency CE/KL enter the loss with their weights;
  without the block the loss is the negative Pearson alone."""
  config = common.tiny(default_config.get_config())
  model = physnet_stage.make_model(config)
  rng = np.random.default_rng(0)
  batch = {
      "frames": rng.integers(0, 256, (2, config.clip_length, 16, 16, 3), dtype=np.uint8),
      "ppg": np.sin(np.arange(config.clip_length) * 2 * np.pi * 1.2 / 30.0)[None].repeat(2, 0),
  }
  variables = model.init(jax.random.key(0), batch["frames"].astype(np.float32), train=False)
  params, state = variables["params"], {"batch_stats": variables["batch_stats"]}

  def run(weights):
    if weights is None:
      del config.physnet["loss_weights"]
    else:
      config.physnet.loss_weights = weights
    fn = physnet_stage.make_loss(model, config)
    loss, (_, metrics) = fn(params, state, batch, jax.random.key(1), 0)
    return float(loss), {k: float(v) for k, v in metrics.items()}

  loss, m = run(dict(neg_pearson=1.0, freq_ce=0.5, freq_kl=2.0))
  assert np.isfinite(m["freq_ce"]) and m["freq_kl"] > 0
  assert loss == pytest.approx(m["neg_pearson"] + 0.5 * m["freq_ce"] + 2.0 * m["freq_kl"], rel=1e-5)
  loss, m = run(None)
  assert set(m) == {"neg_pearson"} and loss == pytest.approx(m["neg_pearson"])
