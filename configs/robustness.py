"""Robustness table: methods under camera degradations at increasing severity.

Command (embedded synthetic data, nothing to download or prepare; about 1.5 min
on a 2-core CPU with the defaults below):

  ./run.sh python eval.py --config=configs/robustness.py --workdir=/tmp/rob

Each raw test video is degraded before the face pipeline (as a camera would
produce it) with every type in `robustness.degradations` at every severity in
`robustness.severities` (plus the clean condition, severity 0, evaluated once),
preprocessed once per condition, and every method in `robustness.methods` runs
on it. Trained models:

  ./run.sh python eval.py --config=configs/robustness.py \
      --config.robustness.methods="('pos', 'codephys')" \
      --config.robustness.checkpoints.codephys=workdirs/default/codephys \
      --config.preprocess.size=16 --workdir=/tmp/rob

(a checkpoint is a stage workdir of a training run; the crop size must be the
one the model was trained on: 16 for configs/default.py)

Writes robustness.json, robustness.csv (method, degradation, severity, mae,
rmse, pearson, snr, num_videos) and robustness_mae.png into workdir. The
synthetic set is shrunk (4 test subjects of 12 s) to keep the default run short;
these options are part of the synthetic data's identity, which only matters if
the same options are also used with configs/eval.py (that prepares them).
"""

import ml_collections

from codephys_jax import degradations
from configs import eval as eval_config


def get_config() -> ml_collections.ConfigDict:
  c = eval_config.get_config()
  c.preprocess.size = 72  # one prepared set for every method (checkpoints must match it)
  c.dataset_options = ml_collections.ConfigDict(
      dict(num_train=1, num_test=4, duration_s=12.0, skip_bad_items=False)
  )
  c.robustness = ml_collections.ConfigDict(
      dict(
          enabled=True,
          methods=("pos", "chrom"),
          # method -> training workdir, for codephys / physnet ('' = not used).
          checkpoints=ml_collections.ConfigDict(dict(codephys="", physnet="")),
          degradations=tuple(degradations.DEGRADATIONS),
          severities=(1, 3, 5),
          seed=0,
          # Raw frames of a video stay in memory between conditions up to this size.
          raw_cache_mb=1024,
          max_videos=0,  # 0 = every video of the split
      )
  )
  return c
