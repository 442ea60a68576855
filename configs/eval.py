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
"""

import ml_collections
from ml_collections import config_dict


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
  c.preprocess = ml_collections.ConfigDict(dict(
      size=config_dict.placeholder(int), target_fps=30.0, detect_every=10, box_scale=1.5, roi="face",
      skin_mask=True,
  ))
  # Generator options for synthetic_rppg (ignored fields are rejected).
  # Builder options: skip_bad_items (real datasets) or the synthetic generator fields.
  c.dataset_options = ml_collections.ConfigDict(dict(skip_bad_items=False))
  # Evaluation convention (DATA_AND_EVAL.md).
  c.hr_method = "fft"  # the standard estimator, reported at the top level
  c.extra_hr_methods = ("peak", "hann_dft", "robust")  # also reported, by name
  c.low_hz = 0.75
  c.high_hz = 2.5
  c.detrend_lambda = 100.0
  c.window_seconds = config_dict.placeholder(float)  # None = whole video
  c.window_stride_seconds = config_dict.placeholder(float)  # None = no overlap
  c.num_waveform_plots = 3
  return c
