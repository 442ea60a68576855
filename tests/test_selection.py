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


def _run_video_eval(monkeypatch, results, config):
  """The metrics train_lib._video_eval's hook returns when inference yields
  `results` ((video_id, prediction, reference, fps) tuples); no model runs."""
  monkeypatch.setattr(train_lib.eval_lib, "run_method", lambda *a, **k: results)
  monkeypatch.setattr(train_lib.inference, "rppg_fn", lambda *a, **k: (lambda v, x: x))
  monkeypatch.setattr(train_lib.inference, "frames_predictor", lambda *a, **k: None)
  monkeypatch.setattr(train_lib.trainer, "fetch", lambda x: x)

  class State:
    eval_variables = {}

  return train_lib._video_eval(None, [], config, batch_size=1)(State(), 0)


def test_video_eval_reports_every_selection_metric(monkeypatch):
  """The evaluation hook returns each selectable metric, finite, lower = better."""

  class FakeResult:
    def __init__(self, windowed):
      snr = 1.5 if windowed else 2.5
      self.metrics = {"mae": 3.0, "rmse": 4.0, "pearson": float("nan"), "snr": snr}

  monkeypatch.setattr(
      train_lib.eval_lib, "score",
      lambda results, cfg: FakeResult(cfg.get("window_seconds") == train_lib.SELECTION_WINDOW_S),
  )
  config = ml_collections.ConfigDict({"input_norm": "standardized", "eval": {}})
  video = ("v", np.zeros(1800), np.zeros(1800), 30.0)  # 60 s
  out = _run_video_eval(monkeypatch, [video], config)
  assert set(train_lib.SELECTION_METRICS) <= set(out)
  assert out["neg_snr"] == -2.5 and np.isfinite(out["mae"])
  assert out["neg_window_snr"] == -1.5 and out["window_snr"] == 1.5
  assert "window_seconds" not in config.eval  # the config itself is not changed
  assert "pearson" not in out  # non-finite diagnostics are dropped


def test_window_snr_follows_a_drifting_pulse():
  """A prediction that follows a pulse drifting from 100 to 125 bpm exactly: its
  whole-video SNR against the one reference HR counts most of the drift as
  noise; in 10 s windows, each against its own reference HR, it is far higher.
  A prediction at a fixed wrong rate stays low either way."""
  from codephys_jax import eval_lib
  fs = 30.0
  t = np.arange(int(fs * 60)) / fs
  ref = np.sin(2 * np.pi * np.cumsum(np.linspace(100.0, 125.0, t.size) / 60.0) / fs)
  wrong = np.sin(2 * np.pi * 84.0 / 60.0 * t)
  cfg = ml_collections.ConfigDict(
      dict(detrend_lambda=100.0, low_hz=0.75, high_hz=2.5, hr_method="fft", extra_hr_methods=())
  )
  whole = eval_lib.score([("v", ref, ref, fs)], cfg).metrics["snr"]
  win_cfg = ml_collections.ConfigDict(cfg.to_dict())
  win_cfg.window_seconds = train_lib.SELECTION_WINDOW_S
  windowed = eval_lib.score([("v", ref, ref, fs)], win_cfg).metrics["snr"]
  assert windowed > whole + 5.0
  assert eval_lib.score([("v", wrong, ref, fs)], win_cfg).metrics["snr"] < 0.0


def test_window_snr_of_videos_shorter_than_the_window(monkeypatch):
  """Validation videos shorter than SELECTION_WINDOW_S give one window each
  (the whole video), not an empty, non-finite mean."""
  fs = 30.0
  t = np.arange(int(fs * 4)) / fs  # 4 s
  ref = np.sin(2 * np.pi * 90.0 / 60.0 * t)
  config = ml_collections.ConfigDict(
      {
          "input_norm": "standardized",
          "eval": dict(detrend_lambda=100.0, low_hz=0.75, high_hz=2.5, hr_method="fft", extra_hr_methods=()),
      }
  )
  out = _run_video_eval(monkeypatch, [("v", ref, ref, fs)], config)
  assert np.isfinite(out["neg_window_snr"])
  assert out["window_snr"] == pytest.approx(out["snr"])
