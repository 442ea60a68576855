"""PURE intra-dataset: CodePhys (Stage I + II), the PhysNet baseline and
POS/CHROM/GREEN, trained on subjects 01, 04, 05, 06, 07, 08, 09 (42 sequences)
and tested on 02, 03, 10 (18 sequences; datasets/pure), paper size.

Command (PURE from TU Ilmenau, see docs/DATASETS.md):

  ./run.sh python train.py --config=configs/pure_intra.py \
      --config.manual_dir=/path/to/PURE --workdir=workdirs/pure_intra

The first run prepares the dataset (PNG frames -> 128x128 face crops, PPG
aligned by timestamps) into ~/tensorflow_datasets (or --config.data_dir).
Results: workdir/results.json and workdir/eval/<method>_test/. Model selection
uses subjects held out of the training split (`val`, 20%); test is read once.

Hardware: an accelerator with >= 16 GB of memory for 4 x 160 x 128 x 128 clips
(estimate; not measured on a GPU here). 3,500 steps per stage (~30 epochs:
42 videos x ~11 clips / batch 4 = ~115 steps per epoch); wall time not measured.

Expected (paper, CodePhys on PURE): MAE 0.39 bpm. Other metrics: not reported in
the material we have.

Smoke variant (CPU, on datasets/pure/dummy_data):

  ./run.sh python train.py --config=configs/pure_intra.py:smoke --workdir=/tmp/pure_smoke
"""

import ml_collections

from configs import paper


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  _, is_smoke = paper.parse_arg(arg, choices=("intra",), default="intra")
  c = paper.paper_config(
      "pure", train_split="train", compare_splits={"clean": "test"}, num_steps=3500, eval_every=350
  )
  return paper.smoke(c) if is_smoke else c
