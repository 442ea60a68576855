"""Whole-video inference of a training run's model: `load_predictor` turns a
training stage's workdir into a whole-video predictor (the one inference path
of model selection, eval.py and the comparison table). Clips are blended by
overlap-add (`codephys_jax.clips`, re-exported here).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np

from codephys_jax import checkpointing
from codephys_jax.clips import clip_starts, overlap_add, predict_video, taper  # noqa: F401
from codephys_jax import representations
from codephys_jax import stages
from codephys_jax import trainer
from codephys_jax.stages import base as stage_base


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
