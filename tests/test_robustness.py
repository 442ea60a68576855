"""Robustness evaluation on a tiny embedded synthetic dataset (no preparation, ~10 s)."""

import csv
import json
import os

import ml_collections
import numpy as np
import pytest

from codephys_jax import alignment
from codephys_jax import degradations as deg_lib
from codephys_jax import eval_lib
from codephys_jax import methods
from codephys_jax import robustness
from codephys_jax import video as video_lib
from configs import robustness as robustness_config

DEGS = ("sensor_noise", "defocus")
SEVS = (1, 3)
METHODS = ("pos", "green")


def tiny_config(**rob) -> ml_collections.ConfigDict:
  c = robustness_config.get_config()
  with c.unlocked():
    c.dataset_options = ml_collections.ConfigDict(
        dict(num_train=1, num_test=2, duration_s=6.0, width=160, height=120)
    )
    c.preprocess.size = 16
    c.robustness.methods = METHODS
    c.robustness.degradations = DEGS
    c.robustness.severities = SEVS
    for k, v in rob.items():
      c.robustness[k] = v
  return c


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("rob"))
  rows = robustness.run(tiny_config(), workdir)
  return workdir, rows


def test_outputs_and_table_shape(run_dir):
  workdir, rows = run_dir
  for name in ("robustness.json", "robustness.csv", "robustness_mae.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  with open(os.path.join(workdir, "robustness.csv")) as f:
    table = list(csv.DictReader(f))
  assert tuple(table[0]) == robustness.CSV_COLUMNS
  assert len(table) == len(METHODS) * (1 + len(DEGS) * len(SEVS))
  with open(os.path.join(workdir, "robustness.json")) as f:
    saved = json.load(f)
  assert saved["config"]["degradations"] == list(DEGS)
  assert len(saved["rows"]) == len(table)
  for method in METHODS:
    mine = [r for r in table if r["method"] == method]
    zero = [r for r in mine if float(r["severity"]) == 0]
    assert len(zero) == 1 and zero[0]["degradation"] == "none"
    for deg in DEGS:
      sev = [float(r["severity"]) for r in mine if r["degradation"] == deg]
      assert sev == sorted(sev) == [float(s) for s in SEVS]
    assert all(int(r["num_videos"]) == 2 for r in mine)
    assert all(np.isfinite(float(r["mae"])) for r in mine)


def test_deterministic_and_degradation_matters(run_dir):
  _, rows = run_dir
  again = robustness.evaluate(tiny_config(), progress=False)
  keys = ("mae", "rmse", "pearson", "snr")
  np.testing.assert_array_equal(
      [[r[k] for k in keys] for r in rows], [[r[k] for k in keys] for r in again]
  )
  heavy = robustness.evaluate(
      tiny_config(degradations=("sensor_noise",), severities=(5,), methods=("pos",)), progress=False
  )
  clean = [r for r in rows if r["method"] == "pos" and r["degradation"] == "none"][0]
  assert heavy[0]["snr"] == clean["snr"]  # the shared clean condition is the same
  assert heavy[1]["degradation"] == "sensor_noise" and heavy[1]["severity"] == 5
  assert heavy[1]["snr"] != clean["snr"]


def test_each_video_preprocessed_once_per_condition(monkeypatch):
  calls = []
  real = alignment.build_example

  def counting(key, *args, **kwargs):
    calls.append(key)
    return real(key, *args, **kwargs)

  monkeypatch.setattr(alignment, "build_example", counting)
  cfg = tiny_config(degradations=("jpeg",), severities=(2,), max_videos=1)
  rows = robustness.evaluate(cfg, progress=False)
  assert len(rows) == 2 * 2  # (pos, green) x (none, jpeg@2)
  assert calls == ["test_000", "test_000"]


def test_checkpoint_methods_use_make_predictor(monkeypatch):
  seen_configs = []
  videos_seen = []

  def fake_make_predictor(cfg):
    seen_configs.append((cfg.method, cfg.checkpoint))
    if cfg.method == "codephys":

      def predict(video):
        videos_seen.append(video["video_id"])
        return np.asarray(video["ppg"], np.float64)  # a perfect model

      return predict
    return methods.unsupervised_predictor(cfg.method)

  monkeypatch.setattr(eval_lib, "make_predictor", fake_make_predictor)
  with pytest.raises(ValueError, match="checkpoints.codephys"):
    robustness.evaluate(tiny_config(methods=("codephys",)), progress=False)
  cfg = tiny_config(methods=("pos", "codephys"), degradations=("defocus",), severities=(2,))
  with cfg.unlocked():
    cfg.robustness.checkpoints.codephys = "/ckpt/dir"
  rows = robustness.evaluate(cfg, progress=False)
  assert ("codephys", "/ckpt/dir") in seen_configs and ("pos", "") in seen_configs
  # Video by video, every condition (clean, defocus@2) of a video in turn.
  assert videos_seen == ["test_000", "test_000", "test_001", "test_001"]
  perfect = [r for r in rows if r["method"] == "codephys"]
  assert all(r["mae"] == 0.0 and r["num_videos"] == 2 for r in perfect)


class _IrregularSource(video_lib.FrameSource):
  """Frames with non-uniform timestamps (like a real decoder clock)."""

  def __init__(self, times, frames):
    self.path, self.fps, self.num_frames = "irregular", 25.0, len(frames)
    self._times, self._frames = times, frames

  @property
  def size(self):
    return (self._frames[0].shape[1], self._frames[0].shape[0])

  def __iter__(self):
    return iter(zip(self._times, self._frames))


def test_degraded_source_keeps_timestamps_and_indexes_frames():
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(5)]
  times = [0.0, 0.041, 0.079, 0.125, 0.16]
  src = _IrregularSource(times, frames)
  deg = deg_lib.make_degradation("sensor_noise", 4, seed=3, fps=src.fps)
  for raw in (src, robustness.RawFrames(src, max_bytes=10**6)):
    out = list(robustness.DegradedSource(raw, deg, source=src, name="x"))
    assert [t for t, _ in out] == times
    for i, (_, f) in enumerate(out):
      np.testing.assert_array_equal(f, deg(frames[i], i))
  cached = robustness.RawFrames(src, max_bytes=10**6)
  assert cached.num_cached is None  # before a full pass
  list(cached)
  assert cached.num_cached == 5
  too_big = robustness.RawFrames(src, max_bytes=100)
  assert len(list(too_big)) == 5 and too_big.num_cached is None


def test_conditions_validation_and_seeds():
  conds = robustness.conditions(["jpeg", "defocus"], [1, 2.5])
  assert [(c.degradation, c.severity) for c in conds] == [
      ("none", 0.0),
      ("jpeg", 1.0),
      ("jpeg", 2.5),
      ("defocus", 1.0),
      ("defocus", 2.5),
  ]
  for bad in (([], [0, 1]), (["jpeg"], [3, 1]), (["nope"], [1]), (["jpeg", "jpeg"], [1])):
    with pytest.raises(ValueError):
      robustness.conditions(*bad)
  assert robustness.video_seed(0, "a") == robustness.video_seed(0, "a")
  assert robustness.video_seed(0, "a") != robustness.video_seed(0, "b")
  assert robustness.video_seed(0, "a") != robustness.video_seed(1, "a")


def test_frames_follow_the_checkpoints_roi():
  def trained(roi):
    def predict(video):
      return video

    predict.preprocess = {"size": 16, "roi": roi}
    return predict

  pos = methods.unsupervised_predictor("pos")
  cfg = tiny_config()
  assert cfg.preprocess.roi is None
  assert robustness._with_roi(cfg, {"pos": pos}).preprocess.roi == "face"
  both = {"pos": pos, "codephys": trained("landmark_patches")}
  assert robustness._with_roi(cfg, both).preprocess.roi == "landmark_patches"
  with pytest.raises(ValueError, match="different frames"):
    robustness._with_roi(cfg, {"codephys": trained("landmark_patches"), "physnet": trained("face")})
  with cfg.unlocked():
    cfg.preprocess.roi = "face"
  with pytest.raises(ValueError, match="leave --config.preprocess.roi unset"):
    robustness._with_roi(cfg, both)
