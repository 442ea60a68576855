"""Figures written by eval and robustness runs (matplotlib, headless)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str) -> str:
  # Write next to the target and rename: a crash never leaves a truncated PNG.
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=110, bbox_inches="tight")
  plt.close(fig)
  os.replace(tmp, path)
  return path


def bland_altman(
    hr_pred: Sequence[float], hr_ref: Sequence[float], path: str, *, title: str = ""
) -> str:
  """Bland-Altman plot: difference vs mean, with bias and 95% limits of agreement."""
  pred = np.asarray(hr_pred, np.float64)
  ref = np.asarray(hr_ref, np.float64)
  mean = (pred + ref) / 2
  diff = pred - ref
  bias = float(np.mean(diff)) if diff.size else float("nan")
  sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
  fig, ax = plt.subplots(figsize=(5.5, 4))
  ax.scatter(mean, diff, s=18, alpha=0.8)
  ax.axhline(bias, color="k", lw=1, label=f"bias {bias:.2f} bpm")
  for sign in (-1, 1):
    ax.axhline(bias + sign * 1.96 * sd, color="r", ls="--", lw=1)
  ax.plot([], [], "r--", label=f"95% LoA ±{1.96 * sd:.2f}")
  ax.set_xlabel("(predicted + reference) / 2 [bpm]")
  ax.set_ylabel("predicted - reference [bpm]")
  ax.set_title(title or "Bland-Altman")
  ax.legend(loc="best", fontsize=8)
  return _save(fig, path)


def waveform(
    pred: np.ndarray,
    ref: np.ndarray,
    fs: float,
    path: str,
    *,
    title: str = "",
    seconds: float | None = 20.0,
) -> str:
  """Predicted vs reference waveform (both standardised), first `seconds`."""
  n = len(ref) if seconds is None else min(len(ref), int(seconds * fs))
  t = np.arange(n) / fs

  def z(x):
    x = np.asarray(x[:n], np.float64)
    return (x - x.mean()) / (x.std() + 1e-8)

  fig, ax = plt.subplots(figsize=(8, 2.8))
  ax.plot(t, z(ref), lw=1.2, label="reference PPG")
  ax.plot(t, z(pred), lw=1.2, label="predicted rPPG", alpha=0.85)
  ax.set_xlabel("time [s]")
  ax.set_yticks([])
  ax.set_title(title)
  ax.legend(loc="upper right", fontsize=8)
  return _save(fig, path)


def severity_curves(
    table: Sequence[Mapping[str, object]], path: str, *, metric: str = "mae"
) -> str:
  """One panel per degradation, `metric` vs severity, one line per method."""
  kinds = sorted({str(r["degradation"]) for r in table if r["degradation"] != "none"})
  methods = sorted({str(r["method"]) for r in table})
  cols = max(1, min(4, len(kinds)))
  rows = max(1, int(np.ceil(len(kinds) / cols)))
  fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
  for ax, kind in zip(axes.ravel(), kinds):
    for m in methods:
      pts = [(0, r[metric]) for r in table if r["method"] == m and r["degradation"] == "none"]
      pts += [
          (r["severity"], r[metric]) for r in table if r["method"] == m and r["degradation"] == kind
      ]
      pts.sort()
      if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
    ax.set_title(kind)
    ax.set_xlabel("severity")
    ax.set_ylabel(metric.upper() + " [bpm]" if metric in ("mae", "rmse") else metric)
  for ax in axes.ravel()[len(kinds) :]:
    ax.axis("off")
  axes.ravel()[0].legend(fontsize=8)
  fig.tight_layout()
  return _save(fig, path)
