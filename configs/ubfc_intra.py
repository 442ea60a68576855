"""UBFC-rPPG intra-dataset: CodePhys (Stage I + II), the PhysNet baseline and
POS/CHROM/GREEN, trained on the 30 protocol training subjects and tested on the 8
test subjects (subjects 11, 18, 20, 24 dropped; datasets/ubfc_rppg), paper size.

Command (DATASET_2 from the authors, see docs/DATASETS.md):

  ./run.sh python train.py --config=configs/ubfc_intra.py \
      --config.manual_dir=/path/to/DATASET_2 --workdir=workdirs/ubfc_intra

The first run prepares the dataset (face crops 128x128 at 30 fps) into
~/tensorflow_datasets (or --config.data_dir). Results: workdir/results.json
(whole-video HR, FFT, band 0.75-2.5 Hz) and workdir/eval/<method>_test/.
Model selection uses subjects held out of the training split (`val`, 20%;
UBFC has no validation split), never the test split, which is read once.

Hardware: an accelerator with >= 16 GB of memory for 4 x 160 x 128 x 128 clips,
about 10 GB of disk for the prepared data. 2,500 steps per stage (~30 epochs of
non-overlapping clips: 30 videos x ~11 clips / batch 4 = ~83 steps per epoch).
Measured on one H200 (benchmarks/gpu_crossval.sh, 8 real subjects, device input
path): 30-33 ms per Stage I step, 111-117 ms per Stage II step, 70-71 ms per
baseline step, so about 9 min of steps for the three stages; a whole run at the
full step count was not measured.

Expected (paper, CodePhys on UBFC-rPPG): MAE 0.21 bpm. Other metrics and the
baseline's numbers: not reported in the material we have.

Smoke variant (CPU, seconds, on datasets/ubfc_rppg/dummy_data):

  ./run.sh python train.py --config=configs/ubfc_intra.py:smoke --workdir=/tmp/ubfc_smoke
"""

import ml_collections

from configs import paper


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  _, is_smoke = paper.parse_arg(arg, choices=("intra",), default="intra")
  c = paper.paper_config(
      "ubfc_rppg",
      train_split="train",
      compare_splits={"clean": "test"},
      num_steps=2500,
      eval_every=250,
  )
  return paper.smoke(c) if is_smoke else c
