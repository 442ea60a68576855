"""Self-contained inference artefacts with `jax.export` (StableHLO, weights baked in).

`export_inference` closes a model function over its parameters, exports it with a
symbolic batch dimension and writes two files:

  <path>        serialised `jax.export.Exported` (bytes; runs without the model code)
  <path>.json   sidecar: input shape (batch as "b"), dtype, sampling rate, description,
                platforms, output shapes.

`load_exported(path)` returns a callable taking one input batch of any batch size.
Loading needs only jax: the training and model modules are imported when exporting.
`export_model(workdir)` exports a trained video model (clip -> rPPG) of a training
stage's workdir to `<workdir>/export/rppg_model.jax`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np


PyTree = Any
EXPORT_NAME = "rppg_model.jax"

_SIDECAR_SUFFIX = ".json"


def export_inference(
    fn: Callable[[PyTree, jax.Array], PyTree],
    params_and_state: PyTree,
    example_input_shape_without_batch: Sequence[int],
    dtype: Any,
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    description: str = "",
    platforms: Sequence[str] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
  """Exports `x -> fn(params_and_state, x)` with a symbolic batch dimension.

  Args:
    fn: inference function `(params_and_state, x) -> outputs`; must be traceable
      with a symbolic leading dimension (no Python branching on the batch size).
    params_and_state: e.g. `{"params": ..., "batch_stats": ...}`; replicated arrays
      are fine, they are copied to host and embedded as constants.
    example_input_shape_without_batch: shape of one example, e.g. (T, H, W, 3).
    dtype: input dtype.
    path: output file; the sidecar goes to `path + ".json"`.
    fs: sampling rate of the input (frames per second), recorded in the sidecar.
    description: free text recorded in the sidecar.
    platforms: lowering platforms (e.g. ("cpu", "cuda")); default: the current
      backend only, and the artefact then refuses other platforms.
    extra_meta: more JSON-serialisable sidecar entries.

  Returns:
    The sidecar dict.
  """
  path = os.fspath(path)
  shape = tuple(int(d) for d in example_input_shape_without_batch)
  dtype = np.dtype(dtype)
  from codephys_jax import trainer  # model-side code only when exporting

  # Host copies, so the baked-in constants carry no device or sharding.
  constants = trainer.fetch(params_and_state)

  def inference(x):
    return fn(constants, x)

  (batch,) = jax.export.symbolic_shape("b")
  spec = jax.ShapeDtypeStruct((batch,) + shape, dtype)
  exported = jax.export.export(
      jax.jit(inference), platforms=None if platforms is None else tuple(platforms)
  )(spec)
  blob = exported.serialize()
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  with open(path, "wb") as f:
    f.write(blob)
  meta = {
      "input_shape": ["b", *shape],
      "input_dtype": dtype.name,
      "fs": fs,
      "description": description,
      "platforms": list(exported.platforms),
      "output_shapes": [[str(d) for d in a.shape] for a in exported.out_avals],
      "output_dtypes": [str(a.dtype) for a in exported.out_avals],
      "jax_version": jax.__version__,
      "num_bytes": len(blob),
  }
  meta.update(dict(extra_meta or {}))
  with open(path + _SIDECAR_SUFFIX, "w") as f:
    json.dump(meta, f, indent=2)
  return meta


def load_exported(path: str | os.PathLike[str]) -> Callable[[Any], PyTree]:
  """Callable `x -> outputs` from an artefact written by `export_inference`."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No exported model at {path}.")
  with open(path, "rb") as f:
    blob = f.read()
  try:
    exported = jax.export.deserialize(bytearray(blob))
  except Exception as e:  # flatbuffer errors are opaque; name the file
    raise ValueError(f"{path} is not a serialised jax.export artefact: {e}") from e
  return exported.call


def load_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
  """The JSON sidecar written next to `path` by `export_inference`."""
  sidecar = os.fspath(path) + _SIDECAR_SUFFIX
  if not os.path.exists(sidecar):
    raise FileNotFoundError(f"No export sidecar at {sidecar}.")
  with open(sidecar) as f:
    return json.load(f)


def export_model(workdir: str) -> dict[str, Any]:
  """Export clip -> rPPG (uint8 [b, T, S, S, 3] -> [b, T]) with jax.export."""
  from codephys_jax import inference  # model-side code only when exporting

  model, variables, config, meta = inference.load_run(workdir)
  size = int(config.preprocess.size)

  fn = inference.rppg_fn(model, config.get("input_norm", "standardized"))
  path = os.path.join(workdir, "export", EXPORT_NAME)
  if jax.process_index() != 0:
    return {}
  return export_inference(
      fn,
      variables,
      (config.clip_length, size, size, 3),
      np.uint8,
      path,
      fs=float(config.preprocess.target_fps),
      description=f"{meta['stage']}: uint8 face clips -> rPPG waveform (standardised)",
      # The face pipeline the clips must come from (crop size, ROI, detector, ...).
      extra_meta={"stage": meta["stage"], "preprocess": dict(config.preprocess)},
  )
