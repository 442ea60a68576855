"""eval_lib.resolve_preprocess: a checkpoint's crop size and ROI reach the data it is evaluated on."""

import pytest

from codephys_jax import eval_lib
from configs import eval as eval_config


def _predictor(**preprocess):
  def predict(video):
    return video

  predict.preprocess = preprocess
  predict.input_norm = "relative_band"
  return predict


def test_checkpoint_size_and_roi_fill_unset_fields():
  c = eval_config.get_config()
  assert c.preprocess.size is None and c.preprocess.roi is None
  r = eval_lib.resolve_preprocess(c, _predictor(size=16, roi="landmark_patches"))
  assert (r.preprocess.size, r.preprocess.roi) == (16, "landmark_patches")
  assert c.preprocess.roi is None  # the given config is not changed
  # Checkpoints from before the ROI choice carry no roi: the face box.
  assert eval_lib.resolve_preprocess(c, _predictor(size=16)).preprocess.roi == "face"
  # Unsupervised methods: the default size and the face box.
  r = eval_lib.resolve_preprocess(c, None)
  assert (r.preprocess.size, r.preprocess.roi) == (eval_lib.DEFAULT_SIZE, "face")


def test_explicit_roi_other_than_the_checkpoints_is_refused():
  c = eval_config.get_config()
  c.preprocess.roi = "face"
  with pytest.raises(ValueError, match="trained on roi='landmark_patches'"):
    eval_lib.resolve_preprocess(c, _predictor(size=16, roi="landmark_patches"))
  c.preprocess.size = 16
  with pytest.raises(ValueError, match="leave --config.preprocess.roi unset"):
    eval_lib.resolve_preprocess(c, _predictor(size=16, roi="landmark_patches"))
  c.preprocess.roi = "landmark_patches"
  assert eval_lib.resolve_preprocess(c, _predictor(size=16, roi="landmark_patches")) is c
