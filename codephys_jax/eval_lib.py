"""`evaluate(config, workdir)`: the library behind eval.py.

Prepares the dataset if needed, runs a method (an unsupervised baseline on the
skin-RGB traces, or a trained CodePhys / PhysNet checkpoint on the face crops)
on every video of a split, and writes `metrics.json`, `per_video.csv`,
`signals.npz` (every video's predicted and reference signal), a Bland-Altman
plot and a few waveform plots into the workdir. HR follows the
rPPG-Toolbox convention (see `codephys_jax.evaluation`); the robust estimator is
reported beside it under its own name.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Mapping

import ml_collections
import numpy as np
import tqdm

from codephys_jax import data as data_lib
from codephys_jax import evaluation
from codephys_jax import jsonio
from codephys_jax import methods
from codephys_jax import plots
from codephys_jax import unsupervised

def eval_settings(config: ml_collections.ConfigDict, fps: float) -> evaluation.EvalSettings:
  """EvalSettings of a config's `eval` block (configs/common.py `eval_settings`)."""
  return evaluation.EvalSettings(
      fs=float(fps),
      diff_normalized=False,
      detrend_lambda=config.detrend_lambda,
      low_hz=config.low_hz,
      high_hz=config.high_hz,
      hr_method=config.hr_method,
      extra_hr_methods=tuple(config.extra_hr_methods),
      window_seconds=config.get("window_seconds"),
      window_stride_seconds=config.get("window_stride_seconds"),
  )


def make_predictor(config: ml_collections.ConfigDict) -> methods.Predictor:
  """The predictor of `config.method`: an unsupervised method or a shipped model by
  name, or a trained model's (`methods.model_methods`) from the stage directory
  `config.checkpoint`; several stage directories separated by commas give the
  ensemble of their models (`methods.ensemble`)."""
  method = config.method.lower()
  if method in unsupervised.METHODS:
    return methods.from_name(method).predictor
  if method in methods.pretrained_models():
    return methods.from_pretrained(method, batch_size=config.get("batch_size", 4)).predictor
  if not methods.needs_checkpoint(method):
    raise ValueError(
        f"unknown method {method!r}; unsupervised: {sorted(unsupervised.METHODS)}, "
        f"shipped models: {list(methods.pretrained_models())}, "
        f"trained models: {list(methods.model_methods())}"
    )
  if not config.get("checkpoint"):
    raise ValueError(f"method {method!r} needs --config.checkpoint=<training workdir>")
  batch_size = config.get("batch_size", 4)
  dirs = [d.strip() for d in config.checkpoint.split(methods.ENSEMBLE_SEPARATOR) if d.strip()]
  if len(dirs) > 1:  # several runs of one recipe (e.g. seeds): their ensemble
    return methods.ensemble(
        [methods.from_workdir(d, method=method, batch_size=batch_size) for d in dirs]
    ).predictor
  return methods.from_workdir(dirs[0], method=method, batch_size=batch_size).predictor


DEFAULT_SIZE = 72  # crop size when neither the config nor a checkpoint sets one


def resolve_preprocess(
    config: ml_collections.ConfigDict, predictor: methods.Predictor | None = None
) -> ml_collections.ConfigDict:
  """`config` with `preprocess.size` and `preprocess.roi` filled in where unset (None).

  A trained checkpoint carries its own preprocessing: its crop size and its ROI
  (face box or landmark patches) are used (and logged, with its input
  representation) unless the command line sets them; an unsupervised method
  gets DEFAULT_SIZE and the face box. An explicit size that differs from the
  checkpoint's is refused by the predictor itself, naming the size to set; an
  explicit ROI that differs is refused here (the model would see other pixels
  than it was trained on).
  """
  ckpt = getattr(predictor, "preprocess", None)
  ckpt_roi = methods.trained_roi(predictor)
  roi = config.preprocess.get("roi")
  if ckpt and roi is not None and roi != ckpt_roi:
    raise ValueError(
        f"the checkpoint {config.get('checkpoint')} was trained on roi={ckpt_roi!r} "
        f"frames, not {roi!r}; leave --config.preprocess.roi unset"
    )
  if roi is not None and config.preprocess.get("size") is not None:
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  if roi is None:
    config.preprocess.roi = ckpt_roi or "face"
  if config.preprocess.get("size") is None:
    config.preprocess.size = int(ckpt["size"]) if ckpt else DEFAULT_SIZE
  if ckpt:
    logging.info(
        "preprocess.size=%d and preprocess.roi=%r from the model %s (input_norm %r)",
        config.preprocess.size,
        config.preprocess.roi,
        config.get("checkpoint") or config.method,
        getattr(predictor, "input_norm", "recorded in the exported program"),
    )
  return config


def load_split(config: ml_collections.ConfigDict) -> data_lib.VideoSource | data_lib.VideoSubset:
  logging.info("Preparing %s (if not prepared yet) ...", config.dataset)
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  return data_lib.open_split(builder, config.split)


def run_method(
    videos: Iterable[Mapping[str, Any]],
    predictor: methods.Predictor,
    *,
    progress: bool = True,
    total: int | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
  """(video_id, prediction, reference PPG, fps) for every video."""
  out = []
  for video in tqdm.tqdm(videos, total=total, desc="evaluating", disable=not progress):
    pred = np.asarray(predictor(video), np.float64)
    ref = np.asarray(video["ppg"], np.float64)
    if pred.shape != ref.shape:
      raise ValueError(
          f"{video['video_id']}: prediction has {pred.shape} samples, reference {ref.shape}"
      )
    out.append((video["video_id"], pred, ref, float(video["fps"])))
  return out


def score(
    results: list[tuple[str, np.ndarray, np.ndarray, float]],
    config: ml_collections.ConfigDict,
) -> evaluation.EvalResult:
  """Metrics of `results` under the convention of `config`, a config's `eval` block."""
  fps = {r[3] for r in results}
  if len(fps) != 1:
    raise ValueError(f"videos of one split must share a frame rate, got {sorted(fps)}")
  settings = eval_settings(config, fps.pop())
  return evaluation.evaluate_signals([(v, p, r) for v, p, r, _ in results], settings)


SIGNALS_FILE = "signals.npz"


def write_signals(path: str, results: list[tuple[str, np.ndarray, np.ndarray, float]]) -> None:
  """Every video's predicted and reference signal and frame rate, in one .npz.

  Keys per video i: `video_id_i`, `pred_i`, `ref_i`, `fps_i` (read_signals
  returns them as (video_id, pred, ref, fps) tuples, the order of `results`).
  Written next to `path` and renamed: a reader never sees a half-written file.
  """
  arrays = {}
  for i, (vid, pred, ref, fps) in enumerate(results):
    arrays[f"video_id_{i}"] = np.asarray(vid)
    arrays[f"pred_{i}"] = np.asarray(pred, np.float32)
    arrays[f"ref_{i}"] = np.asarray(ref, np.float32)
    arrays[f"fps_{i}"] = np.asarray(fps, np.float64)
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, num_videos=np.asarray(len(results)), **arrays)
  os.replace(tmp, path)


def read_signals(path: str) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
  """The (video_id, prediction, reference, fps) tuples `write_signals` wrote."""
  try:
    with np.load(path) as z:
      return [
          (str(z[f"video_id_{i}"]), z[f"pred_{i}"].astype(np.float64),
           z[f"ref_{i}"].astype(np.float64), float(z[f"fps_{i}"]))
          for i in range(int(z["num_videos"]))
      ]
  except (OSError, KeyError, ValueError) as e:
    raise ValueError(f"{path}: not a signals file written by eval_lib.write_signals ({e})") from e


def write_outputs(
    workdir: str,
    result: evaluation.EvalResult,
    results: list[tuple[str, np.ndarray, np.ndarray, float]],
    config: ml_collections.ConfigDict,
    *,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
  os.makedirs(workdir, exist_ok=True)
  metrics = dict(result.metrics)
  metrics["num_videos"] = len(results)
  metrics.update(
      {
          "method": config.method,
          "dataset": config.dataset,
          "split": config.split,
          "hr_method": config.eval.hr_method,
          "window_seconds": config.eval.get("window_seconds"),
      }
  )
  metrics.update(extra or {})
  jsonio.write_json(os.path.join(workdir, "metrics.json"), metrics)
  evaluation.write_per_video_csv(result.rows, os.path.join(workdir, "per_video.csv"))
  write_signals(os.path.join(workdir, SIGNALS_FILE), results)
  rows = result.rows
  plots.bland_altman(
      [r["hr_pred"] for r in rows],
      [r["hr_ref"] for r in rows],
      os.path.join(workdir, "bland_altman.png"),
      title=f"{config.method} on {config.dataset}/{config.split}",
  )
  wave_dir = os.path.join(workdir, "waveforms")
  os.makedirs(wave_dir, exist_ok=True)
  for vid, pred, ref, fps in results[: config.get("num_waveform_plots", 3)]:
    safe = vid.replace("/", "_")
    plots.waveform(
        pred, ref, fps, os.path.join(wave_dir, f"{safe}.png"), title=f"{config.method}: {vid}"
    )
  return metrics


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Evaluate `config.method` on `config.dataset`/`config.split`; returns metrics."""
  predictor = make_predictor(config)
  config = resolve_preprocess(config, predictor)
  videos = load_split(config)
  results = run_method(videos, predictor, total=len(videos))
  result = score(results, config.eval)
  metrics = write_outputs(workdir, result, results, config)
  logging.info(
      "%s on %s/%s: MAE %.2f RMSE %.2f r %.3f (%d videos)",
      config.method,
      config.dataset,
      config.split,
      metrics["mae"],
      metrics["rmse"],
      metrics["pearson"],
      metrics["num_videos"],
  )
  return metrics
