"""Evaluate an rPPG method on a dataset split. See configs/eval.py for usage."""

from absl import app
from absl import flags
from ml_collections import config_flags

from codephys_jax import logs
from codephys_jax import eval_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/eval.py", "Evaluation config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where outputs are written.", required=True)


def main(argv):
  del argv
  logs.setup()
  cfg = _CONFIG.value
  if cfg.get("robustness") is not None and cfg.robustness.get("enabled", False):
    from codephys_jax import robustness

    robustness.run(cfg, _WORKDIR.value)
  else:
    eval_lib.evaluate(cfg, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
