"""Subject-exclusive cross-validation of a training config on a dataset tree.

  ./run.sh python benchmarks/crossval.py --config=configs/ubfc_cpu.py \
      --config.manual_dir=/path/to/UBFC_tree --workdir=workdirs/cv_ubfc_cpu --folds=4

Every fold trains the config's stages on the other subjects (checkpoints
selected on `--num_val` of those, never on the fold's own subjects) and
compares the trained models with the config's unsupervised methods on the
fold's subjects; the per-video HRs are then pooled over the folds
(codephys_jax.crossval). Writes folds.json, fold<i>/, per_subject.csv,
crossval.json and crossval.md into the workdir, and prints the table. A
stopped run resumes at its first unfinished fold.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from codephys_jax import crossval
from codephys_jax import logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.", required=True)
_FOLDS = flags.DEFINE_integer("folds", 4, "Number of subject folds (leave-k-out: subjects / k).")
_NUM_VAL = flags.DEFINE_integer(
    "num_val", 2, "Training subjects held out for checkpoint selection (one subject's "
    "whole-video error jumps between checkpoints)."
)
_SPLIT = flags.DEFINE_string("split", "full", "The dataset split whose subjects are folded.")
_SUBJECTS = flags.DEFINE_list("subjects", [], "Subject ids to fold (default: all of --split).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the fold and validation assignment.")


def main(argv):
  del argv
  logs.setup()
  crossval.run(
      _CONFIG.value,
      _WORKDIR.value,
      num_folds=_FOLDS.value,
      num_val=_NUM_VAL.value,
      split=_SPLIT.value,
      subjects=_SUBJECTS.value,
      seed=_SEED.value,
  )


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
