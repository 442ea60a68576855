"""Cross-dataset: train CodePhys (Stage I + II) and the PhysNet baseline on every
video of one dataset (its `full` split), then test on another dataset with
eval.py. Paper size. The argument names the pair `<train>-<test>`, e.g.
`configs/cross_dataset.py:ubfc_rppg-pure`; datasets: ubfc_rppg, pure, vipl_hr,
cohface (every ordered pair of two different ones).

Commands (the UBFC-rPPG -> PURE pair; raw trees as in docs/DATASETS.md):

  ./run.sh python train.py --config=configs/cross_dataset.py:ubfc_rppg-pure \
      --config.manual_dir=/path/to/DATASET_2 --workdir=workdirs/cross/ubfc_rppg-pure
  for m in codephys physnet; do
    ./run.sh python eval.py --config=configs/eval.py --config.method=$m \
        --config.checkpoint=workdirs/cross/ubfc_rppg-pure/$m \
        --config.dataset=pure --config.manual_dir=/path/to/PURE --config.split=full \
        --config.preprocess.size=128 --workdir=workdirs/cross/ubfc_rppg-pure/test_$m
  done

--config.manual_dir of train.py is the *training* dataset's tree; eval.py gets
the test dataset's tree (and its own prepared copy at 128x128, hence
--config.preprocess.size=128). Unsupervised references on the test dataset:
the same eval.py command with --config.method=pos (no checkpoint).

The comparison table is off here (the held-out data is the other dataset).
Model selection (best checkpoint by whole-video MAE) runs on subjects held out
of the training dataset's `full` split (`val`, 20%); the test dataset is never seen.

Hardware: an accelerator with >= 16 GB of memory for 4 x 160 x 128 x 128 clips
(estimate; not measured on a GPU here). Steps per stage (~30 epochs, VIPL-HR
~10): ubfc_rppg 3,500, pure 5,000, cohface 13,000, vipl_hr 30,000; wall time not
measured.

Expected: not reported (the paper has cross-dataset results, but no number from
them is in the material we have).

Smoke variant (CPU, trains on the training dataset's dummy_data tree):

  ./run.sh python train.py --config=configs/cross_dataset.py:ubfc_rppg-pure,smoke \
      --workdir=/tmp/cross_smoke
"""

import itertools

import ml_collections

from configs import paper

# Training dataset -> steps per stage.
TRAINING = {
    "ubfc_rppg": 3500,
    "pure": 5000,
    "vipl_hr": 30000,
    "cohface": 13000,
}
PAIRS = tuple(f"{a}-{b}" for a, b in itertools.permutations(TRAINING, 2))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  pair, is_smoke = paper.parse_arg(arg, choices=PAIRS, default=None)
  train, test = pair.split("-")
  steps = TRAINING[train]
  c = paper.paper_config(
      train,
      train_split="full",
      compare_splits=None,
      num_steps=steps,
      eval_every=max(250, steps // 10),
  )
  c.test_dataset = test  # for the record (results.json / checkpoint meta); eval.py tests
  return paper.smoke(c) if is_smoke else c
