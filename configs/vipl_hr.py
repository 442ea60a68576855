"""VIPL-HR 5-fold subject-exclusive cross-validation: one config per fold.
Fold K trains on `train_foldK` (the subjects of the other four fold files) and
tests on `foldK` (datasets/vipl_hr; RGB sources 1-3, three broken videos left
out), CodePhys (Stage I + II), the PhysNet baseline and POS/CHROM/GREEN, paper size.

Commands (VIPL-HR with fold1.mat .. fold5.mat, see docs/DATASETS.md), one per fold:

  for k in 1 2 3 4 5; do
    ./run.sh python train.py --config=configs/vipl_hr.py:fold$k \
        --config.manual_dir=/path/to/VIPL-HR --workdir=workdirs/vipl_hr/fold$k
  done

Every fold shares one prepared dataset (the folds are splits of it). Report the
mean over folds of each workdir/vipl_hr/foldK/results.json. Model selection uses
subjects held out of the fold's training split (`val`, 20%), never the test fold.

Hardware: an accelerator with >= 16 GB of memory for 4 x 160 x 128 x 128 clips
(estimate; not measured on a GPU here), about 50 GB of disk for ~2,400 prepared
RGB videos (estimate). 24,000 steps per stage and fold (~10 epochs: ~1,900
training videos x ~5 clips / batch 4 = ~2,400 steps per epoch); wall time not
measured.

Expected (paper, CodePhys on VIPL-HR, 5-fold): SD 7.07, MAE 4.27, RMSE 7.11 bpm.

Smoke variant (CPU, fold 1 of datasets/vipl_hr/dummy_data; the dummy's folds 4
and 5 name no present subject, so only folds 1-3 have test videos there):

  ./run.sh python train.py --config=configs/vipl_hr.py:fold1,smoke --workdir=/tmp/vipl_smoke
"""

import ml_collections

from configs import paper

FOLDS = tuple(f"fold{k}" for k in range(1, 6))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  fold, is_smoke = paper.parse_arg(arg, choices=FOLDS, default="fold1")
  c = paper.paper_config(
      "vipl_hr",
      train_split=f"train_{fold}",
      compare_splits={"clean": fold},
      num_steps=24000,
      eval_every=2000,
  )
  return paper.smoke(c) if is_smoke else c
