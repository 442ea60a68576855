"""Evaluate a method on a dataset split (unsupervised baseline or trained checkpoint).

Command (embedded synthetic data, no download; ~1-2 min on a 2-core CPU the
first time, which includes preparing the dataset):

  ./run.sh python eval.py --config=configs/eval.py --config.method=pos \
      --workdir=/tmp/eval_pos

UBFC-rPPG (manual download, see datasets/ubfc_rppg):

  ./run.sh python eval.py --config=configs/eval.py --config.method=pos \
      --config.dataset=ubfc_rppg --config.manual_dir=/path/to/DATASET_2 \
      --config.split=full --workdir=/tmp/out

Methods: green, ica, chrom, pos, lgi, pbv, omit (unsupervised, on skin RGB
traces), codephys and physnet (need --config.checkpoint=<training workdir>).
Writes metrics.json, per_video.csv, bland_altman.png and waveforms/ in workdir.
The evaluation convention is the `eval` block (docs/EVALUATION.md), e.g.
--config.eval.window_seconds=30 for 30 s windows instead of whole videos.
"""

import ml_collections
from ml_collections import config_dict

from configs import common


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = "pos"
  c.dataset = "synthetic_rppg"
  c.split = "test"
  c.manual_dir = ""
  c.data_dir = ""  # empty: TFDS's usual place (~/tensorflow_datasets)
  c.checkpoint = ""  # training workdir for codephys / physnet
  c.batch_size = 4  # clips per model call (model methods)
  # Face pipeline; part of the prepared data's identity.
  # size None: the checkpoint's crop size for codephys / physnet (logged), else 72.
  c.preprocess = common.preprocess(size=config_dict.placeholder(int))
  # roi None: the checkpoint's ROI for codephys / physnet, else the face box.
  c.preprocess.roi = config_dict.placeholder(str)
  # Generator options for synthetic_rppg (ignored fields are rejected).
  # Builder options: skip_bad_items (real datasets) or the synthetic generator fields.
  c.dataset_options = ml_collections.ConfigDict(dict(skip_bad_items=False))
  c.eval = common.eval_settings()  # e.g. --config.eval.window_seconds=30
  c.num_waveform_plots = 3
  return c
