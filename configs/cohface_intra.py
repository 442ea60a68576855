"""COHFACE intra-dataset on the official `all` protocol: CodePhys (Stage I + II),
the PhysNet baseline and POS/CHROM/GREEN trained on `train` (12 subjects x 4
sessions), model selection on `dev` (12 subjects), tested on `test` (16
subjects; datasets/cohface), paper size. The 20 fps videos are resampled to 30 fps.

Command (COHFACE from Idiap, see docs/DATASETS.md):

  ./run.sh python train.py --config=configs/cohface_intra.py \
      --config.manual_dir=/path/to/cohface --workdir=workdirs/cohface_intra

Results: workdir/results.json (test split) and workdir/eval/<method>_test/.
COHFACE videos are heavily compressed (MPEG-4 at low bitrate); expect larger
errors than on UBFC/PURE.

Hardware: an accelerator with >= 16 GB of memory for 4 x 160 x 128 x 128 clips
(estimate; not measured on a GPU here). 4,000 steps per stage (~30 epochs: 48
videos x ~11 clips / batch 4 = ~132 steps per epoch); wall time not measured.

Expected: not reported (the paper evaluates on COHFACE, but no number from it
is in the material we have).

Smoke variant (CPU, on datasets/cohface/dummy_data):

  ./run.sh python train.py --config=configs/cohface_intra.py:smoke --workdir=/tmp/cohface_smoke
"""

import ml_collections

from configs import paper


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  _, is_smoke = paper.parse_arg(arg, choices=("intra",), default="intra")
  c = paper.paper_config(
      "cohface",
      train_split="train",
      eval_split="dev",
      compare_splits={"clean": "test"},
      num_steps=4000,
      eval_every=400,
  )
  return paper.smoke(c) if is_smoke else c
