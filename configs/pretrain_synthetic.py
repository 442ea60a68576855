"""The shipped `codephys-synthetic` model: CodePhys and its baseline trained on the
embedded synthetic data only (no dataset licence applies), on landmark-patch frames.

  ./run.sh python train.py --config=configs/pretrain_synthetic.py --workdir=workdirs/pretrain_synthetic

The demo's recipe (configs/default.py) with the frames the real-video recipe
uses (configs/ubfc_cpu.py): the forehead and cheek patches warped into one
skin-only image, so that a real face's background, hair and clothes, which the
generator does not model, never reach the model.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  c = default.get_config()
  c.preprocess.roi = "landmark_patches"
  # Nods, turns and talking inside the heart-rate band (shading and a specular
  # highlight move with them): real recordings' motion artefacts, which the demo's
  # slow drift never puts in the band the pulse is read from.
  c.dataset_options.active_motion = 1.0
  return c
