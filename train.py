"""Train CodePhys (Stage I codebook, Stage II) and/or the baseline from a config.

./run.sh python train.py --config=configs/default.py --workdir=workdirs/default
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from codephys_jax import logs
from codephys_jax import train_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (resumed if it exists).", required=True
)


def main(argv):
  del argv
  logs.setup()
  train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
