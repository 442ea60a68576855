"""Robustness table: rPPG methods under camera degradations of increasing severity.

`run(config, workdir)` (eval.py dispatches here when `config.robustness.enabled`)
reads every raw video of a dataset split, degrades its RAW frames, before the
face pipeline, as a camera would produce them (`codephys_jax.degradations`),
runs the face pipeline on the degraded frames and scores every method on the
result with the usual evaluation convention (`eval_lib.score`).

Each video is degraded and preprocessed once per (degradation, severity) and
every method runs on that one example, so adding methods costs only their own
inference. The clean condition (degradation 'none', severity 0) is evaluated
once and shared by all degradation curves. Degradations are deterministic: the
seed of a video is derived from (robustness.seed, video key), and the same seed
is used at every severity, so a higher severity scales the same realisation
(same noise pattern, same motion trajectory) rather than drawing a new one.

Nothing is cached on disk. Raw frames of a video are kept in memory between
conditions while they fit in `robustness.raw_cache_mb` (synthetic videos are
rendered once instead of once per condition); longer videos are re-decoded.

Outputs in workdir: robustness.json (rows + a config summary), robustness.csv
(method, degradation, severity, mae, rmse, pearson, snr, num_videos) and
robustness_mae.png (MAE vs severity per degradation, one line per method).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import os
import zlib
from typing import Any, Iterator, Mapping, Sequence

import ml_collections
import numpy as np
import tqdm

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import degradations as deg_lib
from codephys_jax import eval_lib
from codephys_jax import jsonio
from codephys_jax import methods
from codephys_jax import plots
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib

NONE = "none"
CSV_COLUMNS = ("method", "degradation", "severity", "mae", "rmse", "pearson", "snr", "num_videos")
# Result = (video_id, prediction, reference PPG, fps), as eval_lib.run_method returns.
Result = tuple[str, np.ndarray, np.ndarray, float]


@dataclasses.dataclass(frozen=True)
class Condition:
  """One column of the table: a degradation type at a severity ('none', 0 = clean)."""

  degradation: str
  severity: float

  def make(self, *, seed: int, fps: float) -> deg_lib.Degradation | deg_lib.Compose:
    if self.degradation == NONE:
      return deg_lib.Compose(())
    return deg_lib.make_degradation(self.degradation, self.severity, seed=seed, fps=fps)


def conditions(names: Sequence[str], severities: Sequence[float]) -> list[Condition]:
  """The clean condition once, then every (name, severity) in the given order.

  Raises:
    ValueError: unknown or repeated names, severities outside (0, MAX_SEVERITY],
      or severities not strictly increasing (0 is the shared clean condition).
  """
  names = list(names)
  sev = [float(s) for s in severities]
  unknown = [n for n in names if n not in deg_lib.DEGRADATIONS]
  if unknown:
    raise ValueError(f"unknown degradations {unknown}; valid names: {sorted(deg_lib.DEGRADATIONS)}")
  if len(set(names)) != len(names):
    raise ValueError(f"degradations are repeated: {names}")
  if any(not 0 < s <= deg_lib.MAX_SEVERITY for s in sev):
    raise ValueError(
        f"severities must be in (0, {deg_lib.MAX_SEVERITY}] (0 = the clean condition, "
        f"always included), got {sev}"
    )
  if any(b <= a for a, b in zip(sev, sev[1:])):
    raise ValueError(f"severities must be strictly increasing, got {sev}")
  return [Condition(NONE, 0.0)] + [Condition(n, s) for n in names for s in sev]


def video_seed(seed: int, key: str) -> int:
  """Degradation seed of one video: stable across runs and processes."""
  return int(
      np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode())]).generate_state(1)[
          0
      ]
  )


class RawFrames:
  """Re-iterable (timestamp, frame) stream that keeps the frames if they fit in memory."""

  def __init__(self, source: video_lib.FrameSource, max_bytes: int):
    self.source = source
    self._max_bytes = max_bytes
    self._frames: list[tuple[float, np.ndarray]] | None = None

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    if self._frames is not None:
      yield from self._frames
      return
    kept: list[tuple[float, np.ndarray]] | None = []
    size = 0
    for t, frame in self.source:
      if kept is not None:
        size += frame.nbytes
        if size <= self._max_bytes:
          kept.append((t, frame))
        else:
          kept = None  # too long for memory: decode again for every condition
      yield t, frame
    self._frames = kept

  @property
  def num_cached(self) -> int | None:
    """Frames kept in memory after a full pass; None when the video did not fit."""
    return None if self._frames is None else len(self._frames)


class DegradedSource(video_lib.FrameSource):
  """A FrameSource whose frames pass through `degrade(frame, index)`.

  Timestamps are passed through unchanged, so real videos keep their decoder
  clock (labels stay aligned by time); the frame rate and size are the source's.
  """

  def __init__(
      self,
      frames: RawFrames | video_lib.FrameSource,
      degrade: deg_lib.Degradation | deg_lib.Compose,
      *,
      source: video_lib.FrameSource,
      name: str,
  ):
    self._frames = frames
    self._degrade = degrade
    self.path = name
    self.fps = source.fps
    self.num_frames = source.num_frames
    self._size = source.size

  @property
  def size(self) -> tuple[int, int]:
    return self._size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    for index, (t, frame) in enumerate(self._frames):
      yield t, self._degrade(frame, index)


def degraded_example(
    item: rppg_builder.Item,
    frames: RawFrames | video_lib.FrameSource,
    source: video_lib.FrameSource,
    labels: alignment.RawLabels,
    condition: Condition,
    preprocess: preprocess_lib.PreprocessConfig,
    *,
    seed: int,
) -> dict[str, Any]:
  """Degrade the raw frames, run the face pipeline: the video dict a Predictor takes."""
  degrade = condition.make(seed=video_seed(seed, item.key), fps=source.fps)
  name = f"{item.key} ({condition.degradation} severity {condition.severity:g})"
  degraded = DegradedSource(frames, degrade, source=source, name=name)
  example = alignment.build_example(item.key, item.subject_id, degraded, labels, preprocess)
  example["valid"] = np.asarray(example["valid"]).astype(bool)  # as data.VideoSource gives it
  return example


def _method_config(config: ml_collections.ConfigDict, method: str) -> ml_collections.ConfigDict:
  cfg = copy.deepcopy(config)
  checkpoints = dict(config.robustness.get("checkpoints") or {})
  with cfg.unlocked():
    cfg.method = method
    cfg.checkpoint = checkpoints.get(method, "")
  return cfg


def make_predictors(config: ml_collections.ConfigDict) -> dict[str, methods.Predictor]:
  """method name -> predictor, through eval_lib.make_predictor (checkpoints per method)."""
  names = [m.lower() for m in config.robustness.methods]
  if not names:
    raise ValueError("robustness.methods is empty")
  if len(set(names)) != len(names):
    raise ValueError(f"robustness.methods has repeats: {names}")
  checkpoints = dict(config.robustness.get("checkpoints") or {})
  missing = [m for m in names if methods.needs_checkpoint(m) and not checkpoints.get(m)]
  if missing:
    raise ValueError(
        f"methods {missing} need a checkpoint: set "
        f"--config.robustness.checkpoints.{missing[0]}=<training workdir>"
    )
  return {m: eval_lib.make_predictor(_method_config(config, m)) for m in names}


def _with_roi(
    config: ml_collections.ConfigDict, predictors: Mapping[str, methods.Predictor]
) -> ml_collections.ConfigDict:
  """`config` with `preprocess.roi` set: the trained models' frames (one ROI for all).

  Every method sees the same prepared frames, so the checkpoints must agree on
  their ROI (face box or landmark patches); the unsupervised methods read the
  RGB trace, which the ROI of the frames does not change. Unset and no
  checkpoint: the face box.
  """
  wanted = {m: methods.trained_roi(p) for m, p in predictors.items()}
  wanted = {m: roi for m, roi in wanted.items() if roi is not None}
  roi = config.preprocess.get("roi")
  if roi is None and len(set(wanted.values())) > 1:
    raise ValueError(f"the checkpoints were trained on different frames {wanted}; run them separately")
  if roi is not None and set(wanted.values()) - {roi}:
    raise ValueError(
        f"preprocess.roi={roi!r}, but the checkpoints were trained on {wanted}; "
        "leave --config.preprocess.roi unset"
    )
  if roi is not None:
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  config.preprocess.roi = next(iter(wanted.values()), "face")
  return config


def _split_items(
    config: ml_collections.ConfigDict,
) -> tuple[rppg_builder.RppgBuilder, list[rppg_builder.Item]]:
  builder = data_lib.make_builder(config.dataset, **data_lib.builder_kwargs(config))
  items = builder.list_items(config.get("manual_dir") or None)
  splits = builder.split_keys(items, config.get("manual_dir") or None)
  if config.split not in splits or not splits[config.split]:
    raise ValueError(
        f"{config.dataset} has no items in split {config.split!r}; "
        f"splits: { {k: len(v) for k, v in splits.items()} }"
    )
  by_key = {it.key: it for it in items}
  limit = config.robustness.get("max_videos")
  keys = splits[config.split][: limit or None]
  return builder, [by_key[k] for k in keys]


def _row(
    method: str,
    condition: Condition,
    results: list[Result],
    failed: list[str],
    config: ml_collections.ConfigDict,
) -> dict[str, Any]:
  row: dict[str, Any] = {
      "method": method,
      "degradation": condition.degradation,
      "severity": condition.severity,
  }
  if results:
    metrics = eval_lib.score(results, config.eval).metrics
  else:
    metrics = {
        "mae": float("nan"),
        "rmse": float("nan"),
        "pearson": float("nan"),
        "snr": float("nan"),
        "num_videos": 0,
    }
  for key in ("mae", "rmse", "pearson", "snr"):
    row[key] = float(metrics[key])
  row["num_videos"] = int(metrics["num_videos"])
  for key in ("mae_se", "rmse_se", "mape", "macc"):
    if key in metrics:
      row[key] = float(metrics[key])
  row["num_failed"] = len(failed)
  row["failed"] = list(failed)
  return row


def evaluate(
    config: ml_collections.ConfigDict,
    *,
    progress: bool = True,
    predictors: Mapping[str, methods.Predictor] | None = None,
) -> list[dict[str, Any]]:
  """One row per (method, condition), methods in config order, clean condition first.

  A video whose degraded frames defeat the face pipeline (no face found) counts
  as failed for that condition: it is listed in the row's `failed` and left out
  of the metrics, since no method can produce a prediction for it.
  """
  rob = config.robustness
  conds = conditions(rob.degradations, rob.severities)
  predictors = dict(predictors) if predictors is not None else make_predictors(config)
  config = _with_roi(config, predictors)
  builder, items = _split_items(config)
  preprocess = builder.builder_config.preprocess
  read_item = type(builder).read_item
  max_bytes = int(float(rob.get("raw_cache_mb", 1024)) * 2**20)
  results: dict[tuple[str, Condition], list[Result]] = {
      (m, c): [] for m in predictors for c in conds
  }
  failed: dict[Condition, list[str]] = {c: [] for c in conds}
  bar = tqdm.tqdm(total=len(items) * len(conds), desc="robustness", disable=not progress)
  for item in items:
    source, labels = read_item(item)
    with source:
      frames = RawFrames(source, max_bytes)
      for cond in conds:
        bar.set_postfix_str(f"{item.key} {cond.degradation}@{cond.severity:g}")
        try:
          example = degraded_example(
              item, frames, source, labels, cond, preprocess, seed=int(rob.seed)
          )
        except alignment.PreparationError as e:
          logging.warning(
              "%s under %s severity %g: %s", item.key, cond.degradation, cond.severity, e
          )
          failed[cond].append(item.key)
          bar.update()
          continue
        for method, predictor in predictors.items():
          results[(method, cond)].extend(eval_lib.run_method([example], predictor, progress=False))
        bar.update()
  bar.close()
  return [_row(m, c, results[(m, c)], failed[c], config) for m in predictors for c in conds]


def write_outputs(
    workdir: str, rows: Sequence[Mapping[str, Any]], config: ml_collections.ConfigDict
) -> None:
  os.makedirs(workdir, exist_ok=True)
  rob = config.robustness
  summary = {
      "dataset": config.dataset,
      "split": config.split,
      "dataset_options": dict(config.get("dataset_options") or {}),
      "preprocess": dict(config.preprocess),
      "methods": list(rob.methods),
      "checkpoints": dict(rob.get("checkpoints") or {}),
      "degradations": list(rob.degradations),
      "severities": [float(s) for s in rob.severities],
      "seed": int(rob.seed),
      "hr_method": config.eval.hr_method,
      "window_seconds": config.eval.get("window_seconds"),
  }
  jsonio.write_json(
      os.path.join(workdir, "robustness.json"), {"config": summary, "rows": list(rows)}
  )
  tmp = os.path.join(workdir, "robustness.csv.tmp")
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, os.path.join(workdir, "robustness.csv"))
  plots.severity_curves(rows, os.path.join(workdir, "robustness_mae.png"), metric="mae")


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
  """Plain-text table of the CSV columns, for logs and reports."""
  lines = ["method    degradation     sev     MAE    RMSE       r    SNR   n"]
  for r in rows:
    lines.append(
        f"{r['method']:<9} {r['degradation']:<14} {r['severity']:>4g} {r['mae']:7.2f} "
        f"{r['rmse']:7.2f} {r['pearson']:7.3f} {r['snr']:6.2f} {r['num_videos']:3d}"
    )
  return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]]:
  """Evaluate, write robustness.{json,csv} and robustness_mae.png; returns the rows."""
  rows = evaluate(config)
  write_outputs(workdir, rows, config)
  logging.info("robustness on %s/%s:\n%s", config.dataset, config.split, format_table(rows))
  return rows
