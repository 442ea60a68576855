"""methods.ensemble / average_waveforms and the comma-separated ensemble spec."""

import numpy as np
import pytest

from codephys_jax import methods

FS = 30.0


def _member(scale, phase, settings=None, name="m"):
  t = np.arange(300) / FS

  def predict(video):
    del video
    return scale * np.sin(2 * np.pi * 1.5 * t + phase) + 7.0 * scale

  predict.preprocess = dict(settings or {"size": 16, "roi": "landmark_patches"})
  predict.input_norm = "relative_band"
  return methods.Method(predict, dict(predict.preprocess), name)


def test_average_waveforms_weighs_members_equally():
  t = np.arange(300) / FS
  a = np.sin(2 * np.pi * 1.5 * t)
  b = np.sin(2 * np.pi * 2.0 * t)
  # b at 1000 times a's scale and offset still counts as much as a.
  got = methods.average_waveforms([a, 1000.0 * b + 50.0])
  want = (a / a.std() + b / b.std()) / 2
  np.testing.assert_allclose(got, want - want.mean(), atol=1e-9)
  # A constant member contributes zeros, not NaNs.
  got = methods.average_waveforms([a, np.full(300, 3.0)])
  np.testing.assert_allclose(got, a / a.std() / 2, atol=1e-9)


def test_ensemble_of_methods():
  members = [_member(1.0, 0.0, name="one"), _member(50.0, 0.3, name="two")]
  ens = methods.ensemble(members)
  out = ens.predictor({"video_id": "v"})
  want = methods.average_waveforms([m.predictor({}) for m in members])
  np.testing.assert_allclose(out, want)
  assert abs(out.std() - 1.0) < 0.05  # two nearly aligned unit sinusoids
  # What callers read off a predictor to prepare the frames.
  assert ens.predictor.preprocess == {"size": 16, "roi": "landmark_patches"}
  assert ens.predictor.input_norm == "relative_band"
  assert ens.preprocess == members[0].preprocess
  assert "one" in ens.description and "two" in ens.description


def test_ensemble_refuses_one_member_and_different_frames():
  with pytest.raises(ValueError, match="at least two"):
    methods.ensemble([_member(1.0, 0.0)])
  a = _member(1.0, 0.0, name="sixteen")
  b = _member(1.0, 0.0, {"size": 32, "roi": "landmark_patches"}, name="thirty-two")
  with pytest.raises(ValueError, match="same frames.*sixteen.*thirty-two"):
    methods.ensemble([a, b])


def test_resolve_names_the_bad_ensemble_member(tmp_path):
  real = tmp_path / "run_a"
  real.mkdir()
  with pytest.raises(ValueError, match="ensemble member .*run_b"):
    methods.resolve(f"{real},{tmp_path / 'run_b'}")
  # Unsupervised methods do not form ensembles.
  with pytest.raises(ValueError, match="ensemble member 'pos'"):
    methods.resolve(f"{real},pos")
