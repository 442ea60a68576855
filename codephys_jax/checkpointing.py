"""Checkpoints of a `TrainState` with orbax: resume, keep the latest and the best.

Layout of one step directory (orbax `CheckpointManager`, one item per part):

  <directory>/<step>/params       parameters (orbax StandardSave)
  <directory>/<step>/ema_params   their moving average (only when the run keeps one)
  <directory>/<step>/model_state  non-trainable collections (absent when empty)
  <directory>/<step>/opt_state    optimizer state (absent when it holds no arrays)
  <directory>/<step>/train        {"step", "rng"}
  <directory>/<step>/meta         JSON given to `Checkpointer(meta=...)` (e.g. the config)
  <directory>/<step>/metrics      JSON eval metrics (orbax writes it when best tracking)
  <directory>/codephys_checkpointer.json   best_metric / best_mode, for `load_params`

Parts are separate items so that a frozen teacher or codebook can be loaded
(`load_params`) without the optimizer that trained it, and because orbax refuses to
save an item with no arrays (e.g. `{}` model_state, or SGD's empty opt_state).

Retention: the `max_to_keep` most recent checkpoints are kept, and, when
`best_metric` is set, also the single best checkpoint by that metric even if it is
older than that window (an orbax `AnyPreservationPolicy` of `LatestN(max_to_keep)`
and `BestN(n=1)`). Checkpoints saved without metrics compete only for the "latest"
slots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocp_managers

from codephys_jax import trainer

PyTree = Any

_ARRAY_ITEMS = ("params", "ema_params", "model_state", "opt_state", "train")
_JSON_ITEMS = ("meta",)
_SETTINGS_FILE = "codephys_checkpointer.json"
_WHICH = ("best", "latest")


def _handlers() -> dict[str, Any]:
  handlers: dict[str, Any] = {name: ocp.StandardCheckpointHandler() for name in _ARRAY_ITEMS}
  handlers.update({name: ocp.JsonCheckpointHandler() for name in _JSON_ITEMS})
  return handlers


def _has_arrays(tree: PyTree) -> bool:
  return bool(jax.tree.leaves(tree))


def _abstract(tree: PyTree) -> PyTree:
  """ShapeDtypeStruct target keeping each leaf's sharding (restore lands there)."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None)),
      tree,
  )


class Checkpointer:
  """Saves / restores `trainer.TrainState` under `directory` (see module docstring).

  Args:
    directory: where step directories go (created if missing). Conventionally
      `<workdir>/checkpoints`.
    max_to_keep: number of most recent checkpoints kept.
    best_metric: name of an eval metric (key of `save(..., metrics=...)`); when set,
      the best checkpoint by it is kept as well and `restore_best` is available.
    best_mode: "min" or "max" for `best_metric`.
    save_interval_steps: `save(step, ...)` without `force` only writes when
      `step` is a multiple of this.
    meta: JSON-serialisable dict (e.g. `config.to_dict()`) written with every
      checkpoint and returned by `load_params`.
    async_save: write in a background thread (arrays are copied to host before
      `save` returns, so the caller may donate the state immediately).
  """

  def __init__(
      self,
      directory: str | os.PathLike[str],
      *,
      max_to_keep: int = 3,
      best_metric: str | None = None,
      best_mode: str = "min",
      save_interval_steps: int = 1,
      meta: Mapping[str, Any] | None = None,
      async_save: bool = True,
  ) -> None:
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}.")
    if max_to_keep < 1:
      raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}.")
    self.directory = os.path.abspath(os.fspath(directory))
    self.best_metric = best_metric
    self.best_mode = best_mode
    self.meta = dict(meta or {})
    json.dumps(self.meta)  # fail now, not in a background thread at the first save
    self._manager = _make_manager(
        self.directory,
        max_to_keep=max_to_keep,
        best_metric=best_metric,
        best_mode=best_mode,
        save_interval_steps=save_interval_steps,
        async_save=async_save,
        read_only=False,
    )
    if jax.process_index() == 0:
      with open(os.path.join(self.directory, _SETTINGS_FILE), "w") as f:
        json.dump({"best_metric": best_metric, "best_mode": best_mode}, f)

  # ------------------------------------------------------------------ saving

  def save(
      self,
      step: int,
      state: trainer.TrainState,
      *,
      metrics: Mapping[str, float] | None = None,
      force: bool = False,
  ) -> bool:
    """Saves `state` as checkpoint `step`; returns whether a checkpoint was written.

    `metrics` (host floats) are needed for best tracking; they must contain
    `best_metric` when that is set. Without `force`, steps off the save interval
    are skipped, except the very first checkpoint of an empty directory, which
    orbax always writes. Steps already saved are skipped even with `force`.
    """
    step = int(step)
    if metrics is not None:
      metrics = {k: float(v) for k, v in metrics.items()}
      if self.best_metric is not None and self.best_metric not in metrics:
        raise ValueError(
            f"metrics {sorted(metrics)} lack best_metric {self.best_metric!r} "
            f"(checkpoint directory {self.directory})."
        )
    if step in self._manager.all_steps():
      return False
    items = {
        "params": state.params,
        "ema_params": state.ema_params,
        "model_state": state.model_state,
        "opt_state": state.opt_state,
        "train": {"step": state.step, "rng": state.rng},
    }
    args = {k: ocp.args.StandardSave(v) for k, v in items.items() if _has_arrays(v)}
    args["meta"] = ocp.args.JsonSave(self.meta)
    return bool(
        self._manager.save(step, args=ocp.args.Composite(**args), metrics=metrics, force=force)
    )

  def wait(self) -> None:
    """Blocks until background writes are committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

  # ----------------------------------------------------------------- queries

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """Best step by `best_metric`; None when not tracking or nothing has metrics."""
    if self.best_metric is None:
      return None
    return _best_step(self._manager)

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  # --------------------------------------------------------------- restoring

  def restore(self, step: int, target: trainer.TrainState) -> trainer.TrainState:
    """Restores checkpoint `step` into the shapes, dtypes and shardings of `target`.

    `target` may be a live state (e.g. fresh from `create_train_state`) or its
    `trainer.abstract_state`; static fields (apply_fn, tx) are taken from it.
    """
    self.wait()
    if step not in self._manager.all_steps():
      raise ValueError(
          f"No checkpoint for step {step} in {self.directory}; " f"have {self.all_steps()}."
      )
    parts = {
        "params": target.params,
        "ema_params": target.ema_params,
        "model_state": target.model_state,
        "opt_state": target.opt_state,
        "train": {"step": target.step, "rng": target.rng},
    }
    wanted = {k: v for k, v in parts.items() if _has_arrays(v)}
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            **{k: ocp.args.StandardRestore(_abstract(v)) for k, v in wanted.items()}
        ),
    )
    out = {k: restored[k] if k in wanted else v for k, v in parts.items()}
    return target.replace(
        params=out["params"],
        ema_params=out["ema_params"],
        model_state=out["model_state"],
        opt_state=out["opt_state"],
        step=out["train"]["step"],
        rng=out["train"]["rng"],
    )

  def restore_latest(self, target: trainer.TrainState) -> trainer.TrainState | None:
    """The latest checkpoint restored like `restore`, or None when there is none."""
    self.wait()
    step = self._manager.latest_step()
    return None if step is None else self.restore(step, target)

  def restore_best(self, target: trainer.TrainState) -> trainer.TrainState | None:
    """The best checkpoint by `best_metric`, or None when no checkpoint has metrics."""
    self.wait()
    if self.best_metric is None:
      raise ValueError(f"restore_best needs best_metric (checkpoint directory {self.directory}).")
    step = self.best_step()
    return None if step is None else self.restore(step, target)


def _make_manager(
    directory: str,
    *,
    max_to_keep: int | None,
    best_metric: str | None,
    best_mode: str,
    save_interval_steps: int,
    async_save: bool,
    read_only: bool,
) -> ocp.CheckpointManager:
  best_fn = None
  policy: Any = ocp_managers.LatestN(n=max_to_keep)
  if best_metric is not None:

    def best_fn(metrics: Mapping[str, float]) -> float:
      return float(metrics[best_metric])

    policy = ocp_managers.AnyPreservationPolicy(
        [
            policy,
            # BestN sorts ascending and keeps the tail: reverse for "min".
            ocp_managers.BestN(
                get_metric_fn=best_fn,
                reverse=best_mode == "min",
                n=1,
                keep_checkpoints_without_metrics=False,
            ),
        ]
    )
  options = ocp.CheckpointManagerOptions(
      save_interval_steps=save_interval_steps,
      best_fn=best_fn,  # still needed: orbax only writes metrics / ranks steps with it
      best_mode=best_mode,
      preservation_policy=None if read_only else policy,
      create=not read_only,
      read_only=read_only,
      enable_async_checkpointing=async_save,
  )
  return ocp.CheckpointManager(directory, options=options, item_handlers=_handlers())


def _best_step(manager: ocp.CheckpointManager) -> int | None:
  best = manager.best_step()
  # orbax falls back to the latest step when no checkpoint carries metrics.
  if best is None or manager.metrics(best) is None:
    return None
  return best


def load_params(
    directory: str | os.PathLike[str],
    *,
    which: str = "best",
    step: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[PyTree, PyTree, dict[str, Any]]:
  """(params, model_state, meta) of a checkpoint, without knowing the optimizer.

  A run that kept a parameter average (`TrainState.ema_params`) gives the average:
  it is what the run evaluated and selected.

  For frozen teachers / codebooks and evaluation. `which="best"` uses the metric
  the run tracked (falls back to "latest" when it tracked none); an explicit `step`
  overrides `which`. Arrays are restored replicated over `mesh` (default: all
  devices), whatever device layout the run that wrote them had.
  """
  directory = os.path.abspath(os.fspath(directory))
  if which not in _WHICH:
    raise ValueError(f"which must be one of {_WHICH}, got {which!r}.")
  settings_path = os.path.join(directory, _SETTINGS_FILE)
  if not os.path.exists(settings_path):
    raise FileNotFoundError(
        f"No checkpoints written by Checkpointer in {directory} " f"(missing {_SETTINGS_FILE})."
    )
  with open(settings_path) as f:
    settings = json.load(f)
  manager = _make_manager(
      directory,
      max_to_keep=None,
      best_metric=settings["best_metric"],
      best_mode=settings["best_mode"],
      save_interval_steps=1,
      async_save=False,
      read_only=True,
  )
  try:
    if step is None:
      step = _best_step(manager) if which == "best" and settings["best_metric"] else None
      step = manager.latest_step() if step is None else step
    if step is None or step not in manager.all_steps():
      raise FileNotFoundError(f"No checkpoint {'' if step is None else step} in {directory}.")
    sharding = trainer.replicated(mesh if mesh is not None else trainer.make_mesh())
    metadata = manager.item_metadata(step)
    params_item = "ema_params" if metadata.get("ema_params") is not None else "params"
    present = [k for k in (params_item, "model_state") if metadata.get(k) is not None]
    targets = {
        k: jax.tree.map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), metadata[k].tree
        )
        for k in present
    }
    args = {k: ocp.args.StandardRestore(v) for k, v in targets.items()}
    args["meta"] = ocp.args.JsonRestore()
    restored = manager.restore(step, args=ocp.args.Composite(**args))
  finally:
    manager.close()
  if params_item not in present or restored[params_item] is None:
    raise ValueError(f"Checkpoint {step} in {directory} has no params.")
  model_state = restored["model_state"] if "model_state" in present else {}
  # The step read, so callers can say which checkpoint (selected / final) they use.
  return restored[params_item], model_state, {**dict(restored["meta"] or {}), "step": int(step)}
