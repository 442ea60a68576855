"""Training curves: every stage's scalars as JSON lines, and one figure per run.

Training writes every scalar as a `{"step": s, "name": v, ...}` line to
`<stage workdir>/scalars.jsonl` (`tb_writer.MetricWriter(jsonl_path=...)`; no
TensorFlow needed to read them back). `plot_run(workdir)` draws, per stage found, the training loss, the
validation metric (whole-video MAE on the held-out training subjects; the
reconstruction MSE for the codebook) and code usage, into `workdir/curves.png`.
A resumed run appends; the newest value of a step wins.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from codephys_jax import plots

SCALARS_FILE = "scalars.jsonl"
STAGES = ("codebook", "codephys", "physnet")


def read_scalars(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """name -> (steps, values) from a scalars.jsonl (later lines win per step)."""
  series: dict[str, dict[int, float]] = {}
  with open(path) as f:
    for line in f:
      if not line.strip():
        continue
      row = json.loads(line)
      step = row.pop("step")
      for k, v in row.items():
        series.setdefault(k, {})[step] = v
  return {k: (np.array(sorted(d)), np.array([d[s] for s in sorted(d)])) for k, d in series.items()}


# stage -> (panel title, [(series name, label)])
_PANELS = {
    "train loss": [("train/loss", "loss"), ("train/neg_pearson", "neg Pearson")],
    "validation": [("eval/mae", "val MAE (bpm)"), ("eval/recon_mse", "val recon MSE")],
    "code usage": [
        ("train/perplexity", "train perplexity (Stage II: queries)"),
        ("train/target_perplexity", "ground-truth perplexity"),
        ("eval/perplexity", "val perplexity"),
    ],
}


def plot_run(workdir: str) -> str | None:
  """workdir/curves.png with a row per stage that wrote scalars; None if none did."""
  import matplotlib.pyplot as plt  # plots sets the headless backend

  found = [(s, os.path.join(workdir, s, SCALARS_FILE)) for s in STAGES]
  found = [(s, read_scalars(p)) for s, p in found if os.path.exists(p)]
  if not found:
    return None
  fig, axes = plt.subplots(
      len(found), len(_PANELS), figsize=(4.2 * len(_PANELS), 2.8 * len(found)), squeeze=False
  )
  for row, (stage, series) in enumerate(found):
    for col, (title, names) in enumerate(_PANELS.items()):
      ax = axes[row, col]
      drawn = False
      for name, label in names:
        if name in series:
          steps, values = series[name]
          ax.plot(steps, values, marker="o" if len(steps) < 12 else None, ms=3, label=label)
          drawn = True
      ax.set_title(f"{stage}: {title}", fontsize=9)
      ax.set_xlabel("step", fontsize=8)
      if drawn:
        ax.legend(fontsize=7)
      else:
        ax.set_axis_off()
  fig.tight_layout()
  return plots._save(fig, os.path.join(workdir, "curves.png"))  # noqa: SLF001
