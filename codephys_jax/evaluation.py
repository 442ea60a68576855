"""Per-video evaluation: post-process, estimate HR with every estimator, aggregate.

Follows the evaluation convention of docs/EVALUATION.md: per test video the predicted
clips are concatenated (`concat_clips`); prediction and reference PPG go through the
same `signal.postprocess` (integrate if diff-normalised, detrend, band-pass), per
window when `window_seconds` is set (as the toolbox does) or over the whole video.
The standard estimator (`hr_method`, default 'fft') fills the top-level metrics; every
estimator in `extra_hr_methods` is reported too under ``metrics['estimators']``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
from typing import Any, Iterable, Sequence

import numpy as np

from codephys_jax import hr as hr_lib
from codephys_jax import metrics as metrics_lib
from codephys_jax import signal as sig


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """How signals are post-processed and windowed, and which HR estimators run.

  window_seconds=None evaluates each whole video; otherwise windows of that length
  start every `window_stride_seconds` (None: = window_seconds, no overlap). After the
  full windows, one trailing partial window (starting at the next stride position,
  ending at the video end) is kept when it is at least `min_window_seconds` long
  (None: half a window). A video shorter than that yields no window and is listed in
  `EvalResult.skipped`.
  """

  fs: float = 30.0
  diff_normalized: bool = False
  detrend_lambda: float = 100.0
  low_hz: float = 0.75
  high_hz: float = 2.5
  order: int = 1
  hr_method: str = "fft"
  extra_hr_methods: tuple[str, ...] = ("peak", "robust")
  window_seconds: float | None = None
  window_stride_seconds: float | None = None
  min_window_seconds: float | None = None

  @property
  def methods(self) -> tuple[str, ...]:
    """Standard estimator first, then the extra ones, without duplicates."""
    return tuple(dict.fromkeys((self.hr_method,) + tuple(self.extra_hr_methods)))

  def validate(self) -> None:
    if not self.fs > 0:
      raise ValueError(f"EvalSettings.fs must be > 0, got {self.fs}")
    for name in self.methods:
      if name not in hr_lib.ESTIMATORS:
        raise ValueError(
            f"unknown HR method {name!r}; expected one of " f"{sorted(hr_lib.ESTIMATORS)}"
        )
    if self.window_seconds is not None and not self.window_seconds > 0:
      raise ValueError(f"window_seconds must be > 0, got {self.window_seconds}")
    if self.window_stride_seconds is not None and not self.window_stride_seconds > 0:
      raise ValueError(f"window_stride_seconds must be > 0, got {self.window_stride_seconds}")


@dataclasses.dataclass
class EvalResult:
  """rows: one dict per (video, window); metrics: aggregated over rows; skipped: ids of
  videos too short to give a single window."""

  rows: list[dict[str, Any]]
  metrics: dict[str, Any]
  skipped: list[str] = dataclasses.field(default_factory=list)


def concat_clips(clips: Sequence[np.ndarray]) -> np.ndarray:
  """Concatenate per-clip predictions of one video (each [T] or [T, 1]) in order."""
  if len(clips) == 0:
    raise ValueError("concat_clips needs at least one clip")
  parts = []
  for i, clip in enumerate(clips):
    arr = np.asarray(clip, dtype=np.float64)
    if arr.ndim > 1:
      arr = arr.squeeze()
    if arr.ndim != 1:
      raise ValueError(f"clip {i} must be 1-D (or [T, 1]), got shape {np.shape(clip)}")
    parts.append(arr)
  return np.concatenate(parts)


def window_bounds(num_samples: int, settings: EvalSettings) -> list[tuple[int, int]]:
  """[start, end) sample ranges of the evaluation windows of one video."""
  fs = settings.fs
  if settings.window_seconds is None:
    return [(0, num_samples)] if num_samples >= 2 else []
  win = int(round(settings.window_seconds * fs))
  stride_s = settings.window_stride_seconds
  stride = win if stride_s is None else int(round(stride_s * fs))
  min_s = (
      settings.window_seconds / 2.0
      if settings.min_window_seconds is None
      else settings.min_window_seconds
  )
  min_len = max(2, int(math.ceil(min_s * fs - 1e-9)))
  bounds = [(s, s + win) for s in range(0, num_samples - win + 1, max(1, stride))]
  next_start = bounds[-1][0] + stride if bounds else 0
  if next_start < num_samples and (not bounds or bounds[-1][1] < num_samples):
    if num_samples - next_start >= min_len:
      bounds.append((next_start, num_samples))
  return bounds


def _evaluate_window(pred: np.ndarray, ref: np.ndarray, settings: EvalSettings) -> dict[str, Any]:
  post = dict(
      diff_normalized=settings.diff_normalized,
      detrend_lambda=settings.detrend_lambda,
      low_hz=settings.low_hz,
      high_hz=settings.high_hz,
      order=settings.order,
  )
  p = sig.postprocess(pred, settings.fs, **post)
  r = sig.postprocess(ref, settings.fs, **post)
  band = dict(low_hz=settings.low_hz, high_hz=settings.high_hz)
  row: dict[str, Any] = {}
  for name in settings.methods:
    suffix = "" if name == settings.hr_method else f"_{name}"
    row[f"hr_pred{suffix}"] = hr_lib.estimate_hr(p, settings.fs, method=name, **band)
    row[f"hr_ref{suffix}"] = hr_lib.estimate_hr(r, settings.fs, method=name, **band)
  # The reference's own spread: the FFT bins holding at least half its peak power.
  row["ref_range_lo"], row["ref_range_hi"] = hr_lib.fft_half_power_range(r, settings.fs, **band)
  row["snr"] = metrics_lib.snr_db(p, settings.fs, row["hr_ref"], **band)
  row["macc"] = metrics_lib.macc(p, r)
  row["quality"] = hr_lib.robust_hr(p, settings.fs, **band).quality
  return row


def _mean_se(values: list[float]) -> tuple[float, float]:
  arr = np.asarray(values, dtype=np.float64)
  arr = arr[np.isfinite(arr)]
  if arr.size == 0:
    return float("nan"), float("nan")
  se = float(arr.std() / math.sqrt(arr.size)) if arr.size >= 2 else float("nan")
  return float(arr.mean()), se


def evaluate_signals(
    videos: Iterable[tuple[str, np.ndarray, np.ndarray]], settings: EvalSettings = EvalSettings()
) -> EvalResult:
  """Evaluate (video_id, predicted_signal, reference_ppg) triples sampled at
  settings.fs. Rows carry hr_pred/hr_ref of the standard estimator and
  hr_pred_<name>/hr_ref_<name> for the others, plus snr (dB, prediction vs reference
  HR), macc, quality (robust SQI of the prediction) and ref_range_lo/ref_range_hi
  (bpm: the reference's FFT bins with at least half its peak power,
  `hr.fft_half_power_range`).

  metrics: hr_metrics of the standard estimator at top level, 'snr'/'snr_se' and
  'macc'/'macc_se' (mean over rows; infinite SNRs are left out of the mean),
  'num_videos', 'num_windows', 'num_skipped', and 'estimators': {name: hr_metrics}
  for every estimator including the standard one.
  """
  settings.validate()
  rows: list[dict[str, Any]] = []
  skipped: list[str] = []
  seen: set[str] = set()
  for video_id, pred, ref in videos:
    video_id = str(video_id)
    if video_id in seen:
      raise ValueError(f"video id {video_id!r} appears twice")
    seen.add(video_id)
    p = np.asarray(pred, dtype=np.float64).squeeze()
    r = np.asarray(ref, dtype=np.float64).squeeze()
    if p.ndim != 1 or r.ndim != 1:
      raise ValueError(
          f"video {video_id!r}: signals must be 1-D, got prediction "
          f"{np.shape(pred)} and reference {np.shape(ref)}"
      )
    if p.shape[0] != r.shape[0]:
      raise ValueError(
          f"video {video_id!r}: prediction has {p.shape[0]} samples but "
          f"reference has {r.shape[0]}"
      )
    bounds = window_bounds(p.shape[0], settings)
    if not bounds:
      logging.warning(
          "video %r (%d samples) is shorter than one evaluation window; " "skipped",
          video_id,
          p.shape[0],
      )
      skipped.append(video_id)
      continue
    for w, (start, end) in enumerate(bounds):
      row = {
          "video_id": video_id,
          "window": w,
          "start_s": start / settings.fs,
          "end_s": end / settings.fs,
      }
      row.update(_evaluate_window(p[start:end], r[start:end], settings))
      rows.append(row)

  metrics: dict[str, Any] = dict(
      metrics_lib.hr_metrics([x["hr_pred"] for x in rows], [x["hr_ref"] for x in rows])
  )
  snrs = [x["snr"] for x in rows]
  metrics["snr"], metrics["snr_se"] = _mean_se(snrs)
  metrics["macc"], metrics["macc_se"] = _mean_se([x["macc"] for x in rows])
  metrics["num_videos"] = len({x["video_id"] for x in rows})
  metrics["num_windows"] = len(rows)
  metrics["num_skipped"] = len(skipped)
  estimators = {}
  for name in settings.methods:
    suffix = "" if name == settings.hr_method else f"_{name}"
    estimators[name] = metrics_lib.hr_metrics(
        [x[f"hr_pred{suffix}"] for x in rows], [x[f"hr_ref{suffix}"] for x in rows]
    )
  metrics["estimators"] = estimators
  return EvalResult(rows=rows, metrics=metrics, skipped=skipped)


def write_per_video_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
  """Write rows as CSV: video_id, hr_pred, hr_ref first, then the other keys in the
  order they first appear."""
  first = ["video_id", "hr_pred", "hr_ref"]
  columns = list(first)
  for row in rows:
    for key in row:
      if key not in columns:
        columns.append(key)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, restval="")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
