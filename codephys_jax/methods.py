"""From a method to a predictor: the one resolver behind eval.py, predict.py and
the comparison and robustness tables.

A method is one of:

* an unsupervised method by name (``pos``, ``chrom``, ...) on the skin-RGB
  trace (`from_name`);
* a training workdir (`from_workdir`): a stage directory with ``checkpoints/``
  or, when the stage is not given, the top workdir, where ``codephys/`` is
  preferred to ``physnet/``; its model runs on face crops prepared with the
  preprocessing settings it was trained with;
* an exported model file (`from_exported`: ``export.py`` output with its
  ``.json`` sidecar) on frames prepared as the sidecar records (the whole face
  pipeline; crop size and frame rate only for exports that predate that).

* a model shipped with the package by name (`from_pretrained`, e.g.
  ``codephys-synthetic``): an exported model under ``assets/pretrained/<name>/``
  with its sidecar and a MODEL_CARD.md saying how it was made.

* an ensemble (`ensemble`): several of the trained kinds above, named in one
  string separated by commas (``run_seed0,run_seed1,run_seed2``); the mean of
  their waveforms, each scaled to unit variance first. For models of one recipe
  trained with different seeds (``--config.seed``).

`resolve` tells them apart from one string (predict.py's ``--method``);
eval.py names the method and the checkpoint separately (`eval_lib.make_predictor`).
Every predictor maps a video dict (``frames``, ``rgb``, ``fps``, ``video_id``) to
a waveform at the video's frame rate. JAX is imported only when a trained model
is asked for.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from codephys_jax import unsupervised

# video dict -> predicted waveform at the video's fps
Predictor = Callable[[Mapping[str, Any]], np.ndarray]

# Shipped models: assets/pretrained/<name>/rppg_model.jax (+ .json sidecar, MODEL_CARD.md).
PRETRAINED_DIR = Path(__file__).resolve().parent / "assets" / "pretrained"
PRETRAINED_FILE = "rppg_model.jax"


def pretrained_models() -> tuple[str, ...]:
  """Names of the models shipped with the package."""
  if not PRETRAINED_DIR.is_dir():
    return ()
  return tuple(
      sorted(d.name for d in PRETRAINED_DIR.iterdir() if (d / PRETRAINED_FILE).is_file())
  )


def from_pretrained(name: str, *, batch_size: int = 4) -> Method:
  """A shipped model by name (case-insensitive): its exported file and face pipeline."""
  key = name.lower()
  if key not in pretrained_models():
    raise ValueError(f"no shipped model {name!r}; shipped: {list(pretrained_models())}")
  method = from_exported(PRETRAINED_DIR / key / PRETRAINED_FILE, batch_size=batch_size)
  return dataclasses.replace(method, description=f"{key} (shipped model)")


@dataclasses.dataclass(frozen=True)
class Method:
  """A resolved method: its predictor, the preprocessing it needs, what it is."""

  predictor: Predictor
  # PreprocessConfig fields the predictor needs (crop size, frame rate, ...); {} = any.
  preprocess: dict[str, Any]
  description: str


def trained_roi(predictor: Predictor) -> str | None:
  """The frames (`preprocess.roi`) a trained or exported model expects; None for
  methods that read only the RGB trace. Models from before the ROI choice: the face box."""
  settings = getattr(predictor, "preprocess", None)
  return dict(settings).get("roi", "face") if settings else None


def model_methods() -> tuple[str, ...]:
  """The methods that are trained models: `codephys_jax.stages.METHODS`."""
  from codephys_jax import stages  # JAX/Flax only when a model may be evaluated

  return stages.METHODS


def video_methods() -> tuple[str, ...]:
  """Trained-model methods, CodePhys first; each is also its stage's sub-workdir name."""
  return tuple(sorted(model_methods(), key=lambda m: m != "codephys"))


def needs_checkpoint(method: str) -> bool:
  """Whether `method` is a trained model (then it needs a training workdir)."""
  method = method.lower()
  return method not in unsupervised.METHODS and method in model_methods()


def unsupervised_predictor(name: str) -> Predictor:
  """The predictor of an unsupervised method; an unknown name is a ValueError now."""
  unsupervised.get_method(name)  # unknown names fail before any data work

  def predict(video: Mapping[str, Any]) -> np.ndarray:
    return unsupervised.extract_bvp(name, video["rgb"], float(video["fps"]))

  return predict


def from_name(name: str) -> Method:
  """An unsupervised method by name (case-insensitive)."""
  return Method(unsupervised_predictor(name), {}, name)


def _checkpoint(stage_dir: str | os.PathLike, method: str, batch_size: int, which: str) -> Method:
  from codephys_jax import inference  # JAX/Flax only when a model is asked for

  predictor = inference.load_predictor(
      os.fspath(stage_dir), method=method, batch_size=batch_size, which=which
  )
  settings = dict(getattr(predictor, "preprocess", {}) or {})
  return Method(predictor, settings, f"{method} ({stage_dir})")


def from_workdir(
    path: str | os.PathLike,
    *,
    method: str | None = None,
    batch_size: int = 4,
    which: str = "best",
) -> Method:
  """A training workdir's predictor (`which`: its "best" or "latest" checkpoint).

  With `method`, `path` is that stage's directory and must hold its run. Without,
  the stage is found: a directory with ``checkpoints/`` is the stage its name says
  (or whichever video model it holds), a top workdir gives its first stage
  directory with checkpoints in `video_methods` order.

  Raises:
    ValueError: not a training workdir, or no video model in it.
  """
  if method is not None:
    return _checkpoint(path, method, batch_size, which)
  path = Path(path)
  if (path / "checkpoints").is_dir():
    candidates = [(path, m) for m in video_methods() if path.name == m] or [
        (path, m) for m in video_methods()
    ]
  else:
    candidates = [(path / m, m) for m in video_methods() if (path / m / "checkpoints").is_dir()][
        :1
    ]
  if not candidates:
    raise ValueError(
        f"{path}: not a training workdir (no checkpoints/, codephys/checkpoints/ "
        "or physnet/checkpoints/)"
    )
  err: Exception | None = None
  for stage_dir, stage in candidates:
    try:
      return _checkpoint(stage_dir, stage, batch_size, which)
    except ValueError as e:  # stage/method mismatch: try the other model kind
      err = e
  raise ValueError(f"{path}: {err}")


ENSEMBLE_SEPARATOR = ","


def average_waveforms(waveforms: list[np.ndarray]) -> np.ndarray:
  """The mean of equally long waveforms, each with zero mean and unit standard
  deviation first (a constant one contributes zeros)."""
  out = []
  for w in waveforms:
    w = np.asarray(w, np.float64)
    w = w - w.mean()
    std = w.std()
    out.append(w / std if std > 0 else w)
  return np.mean(out, axis=0)


def ensemble(members: list[Method]) -> Method:
  """The mean of the members' waveforms, each with zero mean and unit standard
  deviation first, so that no member outweighs another by its output scale.

  Every member must take the same frames (the same preprocessing settings): the
  video is prepared once for all of them.

  Raises:
    ValueError: fewer than two members, or members that need different frames.
  """
  if len(members) < 2:
    raise ValueError(f"an ensemble needs at least two models, got {len(members)}")
  settings = members[0].preprocess
  for m in members[1:]:
    if m.preprocess != settings:
      raise ValueError(
          "the models of an ensemble must take the same frames: "
          f"{members[0].description} takes {settings}, {m.description} takes {m.preprocess}"
      )
  predictors = [m.predictor for m in members]

  def predict(video: Mapping[str, Any]) -> np.ndarray:
    return average_waveforms([p(video) for p in predictors])

  for attr in ("preprocess", "input_norm"):
    if hasattr(predictors[0], attr):
      setattr(predict, attr, getattr(predictors[0], attr))
  return Method(
      predict, dict(settings), f"ensemble of {len(members)}: " + "; ".join(m.description for m in members)
  )


def from_exported(path: str | os.PathLike, *, batch_size: int = 4) -> Method:
  """An exported model file (``export.py`` output and its ``.json`` sidecar)."""
  from codephys_jax import clips  # NumPy: no model code for an exported model
  from codephys_jax import export as export_lib

  meta = export_lib.load_sidecar(path)
  call = export_lib.load_exported(path)
  _, clip_length, size, _, _ = meta["input_shape"]
  # The whole face pipeline where the sidecar records it; older exports: size and rate.
  settings = dict(meta.get("preprocess") or {})
  settings["size"] = int(size)
  if meta.get("fs"):
    settings["target_fps"] = float(meta["fs"])

  def predict(video: Mapping[str, Any]) -> np.ndarray:
    frames = video["frames"]
    if frames.shape[1:3] != (int(size), int(size)):
      raise ValueError(
          f"{video['video_id']}: frames are {frames.shape[1:3]}, the exported model {path} "
          f"takes {size}x{size}"
      )
    return clips.predict_video(
        frames,
        lambda b: np.asarray(call(b)),
        clip_length=int(clip_length),
        batch_size=batch_size,
    )

  predict.preprocess = settings  # for callers that prepare data to match
  return Method(predict, settings, f"exported model {path}")


def resolve(spec: str) -> Method:
  """The method one string names: an existing directory is a training workdir,
  an existing file an exported model, anything else an unsupervised method name;
  several trained models separated by commas are their `ensemble`.

  Raises:
    ValueError: none of the three (the message names the unsupervised methods),
      or an ensemble member that is not a trained or exported model.
  """
  if ENSEMBLE_SEPARATOR in spec and not Path(spec).exists():
    parts = [p.strip() for p in spec.split(ENSEMBLE_SEPARATOR) if p.strip()]
    for part in parts:
      if not Path(part).exists() and part.lower() not in pretrained_models():
        raise ValueError(
            f"ensemble member {part!r} (of --method {spec!r}) is not an existing training "
            "workdir, exported model file or shipped model name"
        )
    return ensemble([resolve(part) for part in parts])
  if spec.lower() in pretrained_models():
    return from_pretrained(spec)
  path = Path(spec)
  if path.is_dir():
    return from_workdir(path)
  if path.is_file():
    return from_exported(path)
  try:
    return from_name(spec)
  except (KeyError, ValueError):
    raise ValueError(
        f"--method {spec!r} is neither an unsupervised method "
        f"({', '.join(sorted(unsupervised.METHODS))}), a shipped model "
        f"({', '.join(pretrained_models()) or 'none'}) nor an existing training "
        "workdir or exported model file"
    ) from None
