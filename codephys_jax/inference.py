"""Whole-video inference from a clip model: overlapping clips blended by overlap-add.

Models see fixed-length clips. Normalising and concatenating non-overlapping
clip outputs leaves a jump (and a per-clip trend) at every clip border, which puts spurious spectral
lines at multiples of the clip rate (fps / clip_length * 60 bpm: every ~11 bpm
for 160-frame clips) that an HR estimator then picks. Here every clip output is
linearly detrended and standardised, weighted by a taper that vanishes towards the clip ends, summed
at its position and divided by the summed weights, so the borders blend
smoothly.

`load_predictor` turns a training stage's workdir into that whole-video predictor
(the one inference path of model selection, eval.py and the comparison table).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np

from codephys_jax import checkpointing
from codephys_jax import representations
from codephys_jax import stages
from codephys_jax import trainer
from codephys_jax.stages import base as stage_base


def clip_starts(num_frames: int, clip_length: int, hop: int) -> list[int]:
  """Clip start indices covering [0, num_frames); the last clip ends at the end."""
  if clip_length <= 0 or hop <= 0:
    raise ValueError(f"clip_length and hop must be > 0, got {clip_length}, {hop}")
  if num_frames <= clip_length:
    return [0]
  starts = list(range(0, num_frames - clip_length + 1, hop))
  if starts[-1] + clip_length < num_frames:
    starts.append(num_frames - clip_length)
  return starts


def taper(length: int) -> np.ndarray:
  """Hann window without its zero end points (every sample keeps some weight)."""
  return np.hanning(length + 2)[1:-1]


def overlap_add(clip_outputs: np.ndarray, starts: list[int], num_frames: int) -> np.ndarray:
  """Blend clip outputs [K, T] placed at `starts` into [num_frames] (detrended,
  standardised, Hann-tapered, normalised by the summed taper)."""
  clip_outputs = np.asarray(clip_outputs, np.float64)
  k, length = clip_outputs.shape
  if k != len(starts):
    raise ValueError(f"{k} clip outputs but {len(starts)} start positions")
  weights = taper(length)
  total = np.zeros(max(num_frames, length))
  norm = np.zeros_like(total)
  # A straight line over one clip (seconds) is far below the pulse band: it is a
  # clip-level bias (e.g. from integrating a biased derivative), and left in it
  # would turn into a sawtooth at the clip rate.
  ramp = np.linspace(-1.0, 1.0, length)
  design = np.stack([np.ones(length), ramp], axis=1)
  coef, *_ = np.linalg.lstsq(design, clip_outputs.T, rcond=None)
  residual = clip_outputs - (design @ coef).T
  for out, s in zip(residual, starts):
    z = out / (out.std() + 1e-8)
    total[s : s + length] += weights * z
    norm[s : s + length] += weights
  return (total / np.maximum(norm, 1e-12))[:num_frames]


def predict_video(
    frames: np.ndarray,
    clip_fn: Callable[[np.ndarray], np.ndarray],
    *,
    clip_length: int,
    hop: int | None = None,
    batch_size: int = 4,
) -> np.ndarray:
  """rPPG waveform [N] for a whole video [N, H, W, C] from a clip model.

  `clip_fn` maps a batch [B, clip_length, H, W, C] to waveforms [B, clip_length];
  it is always called with exactly `batch_size` clips (the last batch is padded)
  so that a jitted function compiles once. Videos shorter than one clip are
  padded by repeating their last frame.
  """
  n = len(frames)
  if n == 0:
    raise ValueError("cannot predict on an empty video")
  hop = hop or max(1, clip_length // 2)
  if n < clip_length:
    pad = np.repeat(frames[-1:], clip_length - n, axis=0)
    frames = np.concatenate([frames, pad], axis=0)
  starts = clip_starts(len(frames), clip_length, hop)
  outputs = []
  for lo in range(0, len(starts), batch_size):
    chunk = starts[lo : lo + batch_size]
    batch = np.stack([frames[s : s + clip_length] for s in chunk])
    if len(chunk) < batch_size:
      batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(chunk), axis=0)])
    out = np.asarray(clip_fn(batch))
    if out.shape != (batch_size, clip_length):
      raise ValueError(f"clip_fn returned shape {out.shape}, expected {(batch_size, clip_length)}")
    outputs.append(out[: len(chunk)])
  return overlap_add(np.concatenate(outputs), starts, len(frames))[:n]


def rppg_fn(model, input_norm: str) -> Callable[[Any, Any], jax.Array]:
  """(variables, uint8 clips [B, T, S, S, 3]) -> rPPG [B, T]: the model's inference."""
  # The output as a pulse waveform whatever the representation (integrated for diff targets).
  return lambda v, clips: representations.to_waveform(
      model.apply(v, stage_base.normalize_frames(clips, input_norm), train=False)["rppg"],
      input_norm,
  )


def frames_predictor(
    apply, variables, config: ml_collections.ConfigDict, *, batch_size: int
) -> Callable[[np.ndarray], np.ndarray]:
  """Whole-video frames [N, S, S, 3] -> waveform [N] (overlap-add of half-overlapping
  clips); the one inference path of model selection, eval.py and comparisons.
  `apply` is `jax.jit(rppg_fn(...))`, built once per model so it compiles once."""
  clip_fn = lambda clips: np.asarray(apply(variables, clips))  # noqa: E731
  return functools.partial(
      predict_video,
      clip_fn=clip_fn,
      clip_length=config.clip_length,
      hop=config.clip_length // 2,
      batch_size=batch_size,
  )


def load_run(workdir: str, *, which: str = "best"):
  """(model, variables, run config, meta) of a finished video-model stage."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"{workdir}: no checkpoints/ (is this a training workdir?)")
  mesh = trainer.make_mesh(devices=jax.local_devices()[:1])
  params, model_state, meta = checkpointing.load_params(ckpt_dir, which=which, mesh=mesh)
  stage, config = stages.stage_of_run(meta)
  if not stage.video_model:
    raise ValueError(
        f"{workdir}: stage {stage.name!r} is not a video model " f"({'/'.join(stages.METHODS)})"
    )
  model = stage.build_model(config, meta)
  variables = trainer.fetch({"params": params, **dict(model_state or {})})
  return model, variables, config, {**meta, "stage": stage.name}


def load_predictor(
    workdir: str, *, method: str, batch_size: int = 4, which: str = "best"
) -> Callable[[Mapping[str, Any]], np.ndarray]:
  """eval.py's predictor for a checkpoint: video dict -> whole-video waveform.

  `which`: "best" (the checkpoint selected on the validation subjects) or "latest".
  """
  if method not in stages.METHODS:
    raise ValueError(f"{method!r} is not a trained-model method; known: {list(stages.METHODS)}")
  model, variables, config, meta = load_run(workdir, which=which)
  if method != meta["stage"]:
    raise ValueError(f"{workdir} holds a {meta['stage']!r} run, not {method!r}")
  apply = jax.jit(rppg_fn(model, config.get("input_norm", "standardized")))
  predict_frames = frames_predictor(apply, variables, config, batch_size=batch_size)
  size = int(config.preprocess.size)

  def predict(video: Mapping[str, Any]) -> np.ndarray:
    frames = video["frames"]
    if frames.shape[1:3] != (size, size):
      raise ValueError(
          f"{video['video_id']}: frames are {frames.shape[1:3]}, the checkpoint at "
          f"{workdir} was trained on {size}x{size} crops; set --config.preprocess.size={size}"
      )
    return predict_frames(frames)

  predict.preprocess = dict(config.preprocess)  # for callers that prepare data to match
  predict.input_norm = config.get("input_norm", "standardized")
  predict.step = meta.get("step")
  # The video trunk ("physnet", "cell_tcn"): a stage name does not say which it ran.
  predict.backbone = getattr(model, "backbone", None)
  return predict
