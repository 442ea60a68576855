"""The comparison table: every trained video model of a run and the unsupervised
methods, evaluated on every comparison split; `results.json` and its markdown."""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import ml_collections

from codephys_jax import data as data_lib
from codephys_jax import eval_lib
from codephys_jax import jsonio
from codephys_jax import methods
from codephys_jax import stages

# Where `train_lib.refit` puts a run's video stages trained again on the whole
# training split; compared as the `refit` checkpoint (`<stage>_refit` rows).
REFIT_DIR = "refit"


def compare(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Evaluate trained stages and unsupervised methods on every comparison split."""
  eval_cfg = config.eval
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  # (method, checkpoint) -> predictor; trained models twice: the checkpoint
  # selected on the validation subjects (the headline rows) and the final one.
  predictors: dict[tuple[str, str | None], methods.Predictor] = {}
  for method in stages.METHODS:  # a trained video model's method is its stage
    if method in config.stages:
      for which, label in (("best", "selected"), ("latest", "final")):
        predictors[(method, label)] = methods.from_workdir(
            os.path.join(workdir, method), method=method, which=which
        ).predictor
      if config.get("refit", False):
        refit_dir = os.path.join(workdir, REFIT_DIR, method)
        refit = methods.from_workdir(refit_dir, method=method, which="latest").predictor
        selected = predictors[(method, "selected")].step
        if refit.step != selected:
          raise ValueError(
              f"{refit_dir}: its last checkpoint is step {refit.step}, not the step "
              f"{selected} that {os.path.join(workdir, method)} selected; refit again "
              "into a new workdir"
          )
        predictors[(method, "refit")] = refit
  for name in config.compare.unsupervised:
    predictors[(name, None)] = methods.unsupervised_predictor(name)
  table = []
  for condition, split in config.compare.splits.items():
    videos = data_lib.open_split(builder, split)
    for (method, checkpoint), predictor in predictors.items():
      results = eval_lib.run_method(videos, predictor, progress=False, total=len(videos))
      result = eval_lib.score(results, eval_cfg)
      m = result.metrics
      out_cfg = ml_collections.ConfigDict(
          dict(
              method=method,
              dataset=config.dataset,
              split=split,
              eval=eval_cfg,
              num_waveform_plots=2,
          )
      )
      name = method if checkpoint in (None, "selected") else f"{method}_{checkpoint}"
      eval_lib.write_outputs(
          os.path.join(workdir, "eval", f"{name}_{data_lib.split_dirname(split)}"), result, results, out_cfg
      )
      table.append(
          {
              "method": method,
              "condition": condition,
              "split": split,
              "checkpoint": checkpoint,
              "step": getattr(predictor, "step", None),
              # The video trunk of a learned row (None for unsupervised methods):
              # the `physnet` stage may run the cell trunk (`cell_tcn`).
              "backbone": getattr(predictor, "backbone", None),
              "mae": m["mae"],
              "rmse": m["rmse"],
              "pearson": m["pearson"],
              "snr": m["snr"],
              "num_videos": m["num_videos"],
              "robust_mae": m["estimators"]["robust"]["mae"]
              if "robust" in m["estimators"]
              else None,
          }
      )
  out = {"dataset": config.dataset, "hr_method": eval_cfg.hr_method, "table": table}
  if jax.process_index() == 0:
    jsonio.write_json(os.path.join(workdir, "results.json"), out)
  return out


def method_label(row: Mapping[str, Any]) -> str:
  """A table row's method as printed: `physnet [cell_tcn] (selected, step 1000)`."""
  name = row["method"]
  if row.get("backbone"):
    name += f" [{row['backbone']}]"
  if row.get("checkpoint"):
    name += f" ({row['checkpoint']}, step {row['step']})"
  return name


def format_table(table: list[Mapping[str, Any]]) -> str:
  lines = ["| method | condition | MAE | RMSE | Pearson | SNR (dB) |", "|---|---|---|---|---|---|"]
  for r in table:
    lines.append(
        f"| {method_label(r)} | {r['condition']} | {r['mae']:.2f} | {r['rmse']:.2f} | "
        f"{r['pearson']:.3f} | {r['snr']:.2f} |"
    )
  return "\n".join(lines)
