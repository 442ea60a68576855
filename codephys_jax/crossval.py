"""Subject-exclusive cross-validation of a training config on one dataset tree.

Each fold trains `config` (every stage of `config.stages`) on the subjects
outside the fold, with validation subjects held out of those for checkpoint
selection, and tests every trained model and unsupervised method on the fold's
subjects (`codephys_jax.comparison`). The per-video HRs of all folds are then
pooled: every subject is tested exactly once, by models that never saw it.

Folds are made here, from the subjects of one split (by default `full`), never
from the dataset's own protocol split: a deterministic seeded order, then
`num_folds` groups of near-equal size (leave-k-out is `num_folds = n / k`).
A fold whose `results.json` exists is read, not retrained, so a stopped run
resumes at the first unfinished fold.

Outputs in the workdir: `folds.json` (the subjects of every fold),
`fold<i>/` (a training workdir each), `per_subject.csv` (one row per test
video and method), `crossval.json` (pooled metrics per method and per fold) and
`crossval.md` (the pooled table, then one row per subject). Next to each
subject's reference HR stands the range of rates whose power in the reference's
spectrum is at least half its peak's: a heart rate that drifts over a recording
spreads it over many bins, and a prediction inside it is one the whole-video
reference cannot tell from its own value.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import os
import time
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from codephys_jax import data as data_lib
from codephys_jax import jsonio
from codephys_jax import metrics as metrics_lib
from codephys_jax import train_lib

CONDITION = "clean"  # the comparison condition of every fold: its held-out subjects


def _natural_key(subject: str):
  return (0, int(subject), subject) if subject.isdigit() else (1, 0, subject)


def make_folds(subjects: Sequence[str], *, num_folds: int, seed: int = 0) -> list[list[str]]:
  """`num_folds` disjoint groups covering `subjects`, sizes differing by at most one.

  The order is a seeded hash of each subject id (deterministic across machines
  and independent of listing order); groups are dealt round-robin from it.
  """
  unique = sorted(set(str(s) for s in subjects), key=_natural_key)
  if not 2 <= num_folds <= len(unique):
    raise ValueError(f"num_folds must be in [2, {len(unique)}] for {len(unique)} subjects, got {num_folds}")
  order = sorted(unique, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
  folds = [order[i::num_folds] for i in range(num_folds)]
  return [sorted(f, key=_natural_key) for f in folds]


def val_subjects(train: Sequence[str], *, num_val: int, seed: int = 0) -> list[str]:
  """`num_val` of the training subjects for checkpoint selection (seeded hash order)."""
  if not 1 <= num_val < len(train):
    raise ValueError(f"num_val must be in [1, {len(train) - 1}] for {len(train)} training subjects")
  order = sorted(train, key=lambda s: hashlib.sha256(f"val{seed}:{s}".encode()).hexdigest())
  return sorted(order[:num_val], key=_natural_key)


def fold_config(
    config: ml_collections.ConfigDict,
    *,
    split: str,
    train: Sequence[str],
    val: Sequence[str],
    test: Sequence[str],
) -> ml_collections.ConfigDict:
  """`config` trained on `train` (selection on `val`, a subset of it), compared on `test`."""
  if set(test) & set(train):
    raise ValueError(f"test subjects {sorted(set(test) & set(train))} are also training subjects")
  if not set(val) <= set(train):
    raise ValueError(f"validation subjects {sorted(set(val) - set(train))} are not training subjects")
  c = copy.deepcopy(config)
  with c.unlocked():
    c.train_split = data_lib.subjects_split(split, train)
    c.eval_split = data_lib.VAL_SPLIT
    c.val.subjects = tuple(val)
    c.compare.enabled = True
    c.compare.splits = {CONDITION: data_lib.subjects_split(split, test)}
  return c


def _label(row: Mapping[str, Any]) -> str:
  checkpoint = row.get("checkpoint")
  return row["method"] if checkpoint in (None, "selected") else f"{row['method']}_{checkpoint}"


def fold_rows(workdir: str, results: Mapping[str, Any]) -> list[dict[str, Any]]:
  """Per-video rows (method label, video, subject, HRs) of one finished fold."""
  rows = []
  for entry in results["table"]:
    label = _label(entry)
    path = os.path.join(
        workdir, "eval", f"{label}_{data_lib.split_dirname(entry['split'])}", "per_video.csv"
    )
    with open(path, newline="") as f:
      for r in csv.DictReader(f):
        rows.append(
            {
                "method": label,
                "video_id": r["video_id"],
                "hr_pred": float(r["hr_pred"]),
                "hr_ref": float(r["hr_ref"]),
                # Absent from per_video.csv files written before these columns existed.
                "ref_range_lo": float(r["ref_range_lo"]) if r.get("ref_range_lo") else None,
                "ref_range_hi": float(r["ref_range_hi"]) if r.get("ref_range_hi") else None,
                "step": entry.get("step"),
            }
        )
  return rows


def pooled_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
  """MAE, RMSE, Pearson (and their standard errors) per method over all pooled videos."""
  out = {}
  for method in dict.fromkeys(r["method"] for r in rows):
    mine = [r for r in rows if r["method"] == method]
    m = metrics_lib.hr_metrics([r["hr_pred"] for r in mine], [r["hr_ref"] for r in mine])
    out[method] = {k: float(v) for k, v in m.items()}
  return out


def format_table(pooled: Mapping[str, Mapping[str, float]], per_fold: Sequence[Mapping[str, Any]]) -> str:
  """Markdown: pooled MAE / RMSE / Pearson per method, then each fold's MAE."""
  head = "| method | MAE | RMSE | Pearson | videos | " + " | ".join(
      f"fold {i} MAE" for i in range(len(per_fold))
  )
  lines = [head + " |", "|---" * (5 + len(per_fold)) + "|"]
  for method, m in pooled.items():
    folds = " | ".join(
        f"{f['metrics'][method]['mae']:.2f}" if method in f["metrics"] else "" for f in per_fold
    )
    lines.append(
        f"| {method} | {m['mae']:.2f} ± {m['mae_se']:.2f} | {m['rmse']:.2f} | "
        f"{m['pearson']:.3f} | {int(m['num'])} | {folds} |"
    )
  return "\n".join(lines)


def format_subjects(rows: Sequence[Mapping[str, Any]]) -> str:
  """Markdown: one row per test video (reference HR, the range of rates holding at
  least half the reference's peak power, each method's HR), in subject order."""
  methods = list(dict.fromkeys(r["method"] for r in rows))
  videos = sorted(
      {(r["subject"], r["video_id"], r["fold"]) for r in rows}, key=lambda t: _natural_key(t[0])
  )
  hr = {(r["video_id"], r["method"]): r for r in rows}
  lines = [
      "| subject | fold | reference HR | reference half-power range | "
      + " | ".join(methods) + " |",
      "|---" * (4 + len(methods)) + "|",
  ]
  for subject, vid, fold in videos:
    first = next(r for r in rows if r["video_id"] == vid)
    lo, hi = first.get("ref_range_lo"), first.get("ref_range_hi")
    spread = f"{lo:.1f}-{hi:.1f}" if lo is not None and hi is not None else ""
    cells = " | ".join(
        f"{hr[(vid, m)]['hr_pred']:.1f}" if (vid, m) in hr else "" for m in methods
    )
    lines.append(f"| {subject} | {fold} | {first['hr_ref']:.1f} | {spread} | {cells} |")
  return "\n".join(lines)


def run(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    num_folds: int,
    num_val: int = 2,
    split: str = "full",
    subjects: Sequence[str] = (),
    seed: int = 0,
) -> dict[str, Any]:
  """Cross-validate `config` over the subjects of `split` (or the given `subjects`)."""
  os.makedirs(workdir, exist_ok=True)
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  videos = data_lib.open_split(builder, split)
  subject_of = {}
  for i in range(len(videos)):
    v = videos[i]
    subject_of[v["video_id"]] = v["subject_id"]
  found = sorted(set(subject_of.values()), key=_natural_key)
  chosen = [str(s) for s in subjects] or found
  missing = sorted(set(chosen) - set(found), key=_natural_key)
  if missing:
    raise ValueError(f"{builder.name}/{split} has no subject(s) {missing}; it has {found}")
  folds = make_folds(chosen, num_folds=num_folds, seed=seed)
  plan = []
  for i, test in enumerate(folds):
    train = [s for s in chosen if s not in test]
    plan.append({"test": test, "train": train, "val": val_subjects(train, num_val=num_val, seed=seed)})
  jsonio.write_json(
      os.path.join(workdir, "folds.json"),
      {"dataset": config.dataset, "split": split, "seed": seed, "folds": plan},
  )
  all_rows: list[dict[str, Any]] = []
  per_fold = []
  for i, fold in enumerate(plan):
    fold_dir = os.path.join(workdir, f"fold{i}")
    results_path = os.path.join(fold_dir, "results.json")
    start = time.time()
    if os.path.exists(results_path):
      logging.info("crossval: fold %d finished before, reading %s", i, results_path)
      with open(results_path) as f:
        results = json.load(f)
    else:
      logging.info("crossval: fold %d: train %s (val %s), test %s", i, fold["train"], fold["val"], fold["test"])
      cfg = fold_config(config, split=split, train=fold["train"], val=fold["val"], test=fold["test"])
      results = train_lib.train_and_evaluate(cfg, fold_dir)["results"]
    rows = [dict(r, fold=i, subject=subject_of[r["video_id"]]) for r in fold_rows(fold_dir, results)]
    all_rows.extend(rows)
    per_fold.append({**fold, "seconds": round(time.time() - start, 1), "metrics": pooled_metrics(rows)})
  pooled = pooled_metrics(all_rows)
  _write_rows(os.path.join(workdir, "per_subject.csv"), all_rows)
  out = {
      "dataset": config.dataset,
      "split": split,
      "num_folds": num_folds,
      "hr_method": config.eval.hr_method,
      "pooled": pooled,
      "folds": per_fold,
  }
  jsonio.write_json(os.path.join(workdir, "crossval.json"), out)
  table = format_table(pooled, per_fold) + "\n\n" + format_subjects(all_rows)
  with open(os.path.join(workdir, "crossval.md"), "w") as f:
    f.write(table + "\n")
  print(table, flush=True)
  return out


def _write_rows(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
  columns = [
      "fold", "subject", "video_id", "method", "step", "hr_pred", "hr_ref",
      "ref_range_lo", "ref_range_hi", "abs_error",
  ]
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=columns)
    w.writeheader()
    for r in rows:
      w.writerow(
          {
              **{k: r.get(k) for k in columns[:-1]},
              "abs_error": f"{abs(r['hr_pred'] - r['hr_ref']):.3f}",
          }
      )
  os.replace(tmp, path)
