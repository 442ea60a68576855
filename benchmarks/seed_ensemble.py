"""Cross-validation runs of one config that differ only in the training seed:
their spread, and what averaging their models' outputs (an ensemble) gives.

  ./run.sh python benchmarks/seed_ensemble.py --config=configs/ubfc_cpu.py \
      RUN_DIR [RUN_DIR ...] [--members=1,2,4] [--markdown=FILE]

Each RUN_DIR is a finished (or partly finished) `benchmarks/crossval.py`
workdir; all must share the same folds (folds.json). Only folds finished in
every run are used. For every learned method (label as in the crossval table:
`codephys`, `codephys_final`, ...):

- the pooled whole-video MAE of each run and their mean, standard deviation,
  min and max;
- for each ensemble size k of `--members`, the pooled MAE of the ensemble of k
  runs: each video's predicted signals (`signals.npz` of the fold's eval dir),
  averaged as `methods.ensemble` does at inference, and scored under the
  config's `eval` convention like any method. Given as the mean over all
  combinations of k runs (at most `--max_combinations`, drawn with a fixed
  seed), with its min and max.

Unsupervised methods do not depend on the training seed; POS and CHROM are
given once, from the first run.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
from typing import Any, Sequence

from absl import app
from absl import flags
from ml_collections import config_flags

from codephys_jax import crossval
from codephys_jax import data as data_lib
from codephys_jax import eval_lib
from codephys_jax import methods
from codephys_jax import metrics as metrics_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "The runs' training config.", lock_config=True)
_MEMBERS = flags.DEFINE_list("members", ["1", "2", "4"], "Ensemble sizes to score.")
_MAX_COMB = flags.DEFINE_integer("max_combinations", 70, "Most combinations scored per size.")
_MARKDOWN = flags.DEFINE_string("markdown", "", "Also write the tables here.")

UNSUPERVISED = ("pos", "chrom", "green")


def finished_folds(run_dir: str) -> list[int]:
  with open(os.path.join(run_dir, "folds.json")) as f:
    n = len(json.load(f)["folds"])
  return [i for i in range(n) if os.path.exists(os.path.join(run_dir, f"fold{i}", "results.json"))]


def fold_signals(run_dir: str, fold: int) -> dict[str, dict[str, Any]]:
  """Per method label: {video_id: (pred, ref, fps)} of one finished fold."""
  fold_dir = os.path.join(run_dir, f"fold{fold}")
  with open(os.path.join(fold_dir, "results.json")) as f:
    results = json.load(f)
  out: dict[str, dict[str, Any]] = {}
  for entry in results["table"]:
    label = crossval._label(entry)  # pylint: disable=protected-access
    path = os.path.join(
        fold_dir, "eval", f"{label}_{data_lib.split_dirname(entry['split'])}", eval_lib.SIGNALS_FILE
    )
    if not os.path.exists(path):
      raise FileNotFoundError(
          f"{path} is missing: the run was evaluated before eval outputs carried signals.npz"
      )
    out[label] = {vid: (pred, ref, fps) for vid, pred, ref, fps in eval_lib.read_signals(path)}
  return out


def ensemble_mae(signals, members: Sequence[int], folds: Sequence[int], method: str, eval_cfg) -> float:
  """Pooled MAE of the ensemble of the runs `members` (indices into `signals`)."""
  pred_hr, ref_hr = [], []
  for fold in folds:
    vids = signals[members[0]][fold][method]
    results = []
    for vid in vids:
      preds = [signals[m][fold][method][vid][0] for m in members]
      _, ref, fps = vids[vid]
      results.append((vid, methods.average_waveforms(preds), ref, fps))
    scored = eval_lib.score(results, eval_cfg)
    pred_hr += [r["hr_pred"] for r in scored.rows]
    ref_hr += [r["hr_ref"] for r in scored.rows]
  return float(metrics_lib.hr_metrics(pred_hr, ref_hr)["mae"])


def main(argv):
  run_dirs = argv[1:]
  if not run_dirs:
    raise app.UsageError("give one or more crossval workdirs")
  config = _CONFIG.value
  plans = []
  for d in run_dirs:
    with open(os.path.join(d, "folds.json")) as f:
      plans.append(json.load(f)["folds"])
  for d, p in zip(run_dirs[1:], plans[1:]):
    if p != plans[0]:
      raise ValueError(f"{d}/folds.json differs from {run_dirs[0]}/folds.json: not the same folds")
  folds = sorted(set.intersection(*(set(finished_folds(d)) for d in run_dirs)))
  if not folds:
    raise ValueError("no fold is finished in every run")
  signals = [{i: fold_signals(d, i) for i in folds} for d in run_dirs]
  methods = list(signals[0][folds[0]])
  learned = [m for m in methods if m not in UNSUPERVISED]
  lines = [
      f"{len(run_dirs)} runs, folds {folds} (test subjects: "
      + ", ".join("/".join(plans[0][i]["test"]) for i in folds) + ")",
      "",
      "| method | " + " | ".join(os.path.basename(d.rstrip("/")) for d in run_dirs)
      + " | mean ± sd | min-max |",
      "|---" * (len(run_dirs) + 3) + "|",
  ]
  for m in learned:
    maes = [ensemble_mae(signals, [r], folds, m, config.eval) for r in range(len(run_dirs))]
    sd = statistics.stdev(maes) if len(maes) > 1 else 0.0
    lines.append(
        f"| {m} | " + " | ".join(f"{x:.2f}" for x in maes)
        + f" | {statistics.mean(maes):.2f} ± {sd:.2f} | {min(maes):.2f}-{max(maes):.2f} |"
    )
  for m in (u for u in UNSUPERVISED if u in methods):
    lines.append(f"| {m} (any run) | {ensemble_mae(signals, [0], folds, m, config.eval):.2f} |")
  lines += ["", "Ensembles (mean of unit-variance outputs), pooled MAE over the combinations of k runs:", ""]
  sizes = [int(k) for k in _MEMBERS.value if 0 < int(k) <= len(run_dirs)]
  lines += ["| method | " + " | ".join(f"k={k}: mean (min-max, n)" for k in sizes) + " |",
            "|---" * (len(sizes) + 1) + "|"]
  rng = random.Random(0)
  for m in learned:
    cells = []
    for k in sizes:
      combos = list(itertools.combinations(range(len(run_dirs)), k))
      if len(combos) > _MAX_COMB.value:
        combos = rng.sample(combos, _MAX_COMB.value)
      maes = [ensemble_mae(signals, list(c), folds, m, config.eval) for c in combos]
      cells.append(f"{statistics.mean(maes):.2f} ({min(maes):.2f}-{max(maes):.2f}, {len(maes)})")
    lines.append(f"| {m} | " + " | ".join(cells) + " |")
  text = "\n".join(lines)
  print(text)
  if _MARKDOWN.value:
    with open(_MARKDOWN.value, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main)
