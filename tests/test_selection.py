"""Checkpoint selection metric of the training stages (train_lib.select_metric)."""

import ml_collections
import numpy as np
import pytest

from codephys_jax import stages
from codephys_jax import train_lib


def test_selection_metric_per_stage():
  cfg = ml_collections.ConfigDict({"select_metric": "neg_snr"})
  assert train_lib._selection_metric(stages.get_stage("physnet"), cfg) == "neg_snr"
  assert train_lib._selection_metric(stages.get_stage("codephys"), ml_collections.ConfigDict()) == "mae"
  assert train_lib._selection_metric(stages.get_stage("codebook"), ml_collections.ConfigDict()) == "recon_mse"
  with pytest.raises(ValueError, match="select_metric must be one of"):
    train_lib._selection_metric(stages.get_stage("physnet"), ml_collections.ConfigDict({"select_metric": "snr"}))
  with pytest.raises(ValueError, match="selects on 'recon_mse'"):
    train_lib._selection_metric(stages.get_stage("codebook"), cfg)


def test_video_eval_reports_every_selection_metric(monkeypatch):
  """The evaluation hook returns each selectable metric, finite, lower = better."""

  class FakeResult:
    metrics = {"mae": 3.0, "rmse": 4.0, "pearson": float("nan"), "snr": 2.5}

  monkeypatch.setattr(train_lib.eval_lib, "run_method", lambda *a, **k: [])
  monkeypatch.setattr(train_lib.eval_lib, "score", lambda *a, **k: FakeResult())
  monkeypatch.setattr(train_lib.inference, "rppg_fn", lambda *a, **k: (lambda v, x: x))
  monkeypatch.setattr(train_lib.inference, "frames_predictor", lambda *a, **k: None)
  monkeypatch.setattr(train_lib.trainer, "fetch", lambda x: x)

  class State:
    eval_variables = {}

  config = ml_collections.ConfigDict({"input_norm": "standardized", "eval": {}})
  out = train_lib._video_eval(None, [], config, batch_size=1)(State(), 0)
  assert set(train_lib.SELECTION_METRICS) <= set(out)
  assert out["neg_snr"] == -2.5 and np.isfinite(out["mae"])
  assert "pearson" not in out  # non-finite diagnostics are dropped
