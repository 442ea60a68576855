"""Model-agnostic data-parallel training machinery: mesh, sharding, state, steps, loop.

Every trainer (CodePhys Stage I / Stage II, baselines) is written as a pure
`loss_fn(params, model_state, batch, rng, step) -> (loss, (new_model_state, metrics))`
and gets the rest from here:

* a 1-D `Mesh` over every device of every process (axis "data");
* parameters / optimizer state replicated over that axis, the batch split along it,
  so `jax.jit` with explicit in/out shardings does data parallelism (XLA inserts the
  gradient all-reduce and the cross-device BatchNorm statistics itself);
* `TrainState` created directly in its replicated sharding (abstract shapes first);
* `train_step` with the RNG folded by step, donated state, and norms of the
  gradient / parameters / update logged next to the loss;
* `train_loop`, which resumes at `state.step`, asks the caller for a data iterator
  positioned at that step, logs, checks for NaN/inf, evaluates and checkpoints.

Multi-process: each process feeds only its own slice of the global batch
(`shard_batch`); the global batch is the local batch times `jax.process_count()`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from clu import metrics as clu_metrics
from clu import parameter_overview as clu_parameter_overview
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

PyTree = Any
Metrics = dict[str, jax.Array]
LossFn = Callable[
    [PyTree, PyTree, PyTree, jax.Array, jax.Array],
    tuple[jax.Array, tuple[PyTree, Mapping[str, jax.Array]]],
]
PostUpdateFn = Callable[["TrainState", PyTree, jax.Array], "TrainState"]


# --------------------------------------------------------------------------- mesh


def make_mesh(*, data_axis: str = "data", devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named `data_axis` over `devices` (default: all devices of all processes).

  Built with `Mesh` directly because `jax.make_mesh` now defaults to Explicit axis
  types, which would change how un-annotated intermediates are sharded.
  """
  devs = list(jax.devices() if devices is None else devices)
  if not devs:
    raise ValueError("make_mesh: no devices given.")
  return Mesh(np.array(devs), (data_axis,))


def _data_axis(mesh: Mesh) -> str:
  if len(mesh.axis_names) != 1:
    raise ValueError(f"Expected a 1-D data mesh, got axes {mesh.axis_names}.")
  return mesh.axis_names[0]


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the data axis, the rest replicated."""
  return NamedSharding(mesh, P(_data_axis(mesh)))


def replicated(mesh: Mesh) -> NamedSharding:
  """Fully replicated over the mesh (parameters, optimizer state, metrics)."""
  return NamedSharding(mesh, P())


def process_shard(num_items: int) -> tuple[int, int]:
  """(process_index, process_count) for splitting `num_items` across processes.

  Use it to give every process a disjoint, equally sized part of the data (e.g. a
  global batch of `num_items` examples, or `num_items` shards of a dataset; the
  process reads items `process_index::process_count`). Raises if the items cannot be
  split evenly, because uneven per-process batches break `shard_batch`.
  """
  count = jax.process_count()
  if num_items % count:
    raise ValueError(f"{num_items} items cannot be split evenly over {count} processes.")
  return jax.process_index(), count


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """Per-process batch size; checks the global batch divides over devices and processes."""
  if global_batch_size % mesh.devices.size:
    raise ValueError(
        f"Global batch {global_batch_size} is not divisible by the {mesh.devices.size} "
        "devices of the mesh."
    )
  _, count = process_shard(global_batch_size)
  return global_batch_size // count


def shard_batch(mesh: Mesh, local_batch: PyTree) -> PyTree:
  """Assembles global arrays, split along the data axis, from each process's local batch.

  A batch whose leaves are already jax.Arrays split along the data axis of `mesh`
  (e.g. from `codephys_jax.device_input`) is the global batch and is returned as is.

  Every leaf must have the same leading (batch) size, divisible by the number of
  local devices. With P processes the global leading size is P times the local one;
  process i's rows become rows [i*n, (i+1)*n) of the global array.
  """
  sharding = batch_sharding(mesh)
  leaves = jax.tree.leaves(local_batch)
  if leaves and all(
      isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim) for x in leaves
  ):
    # Already a global batch on the mesh (device input path): no host round trip.
    return local_batch
  sizes = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree.leaves(local_batch)}
  if None in sizes or len(sizes) != 1:
    raise ValueError(f"Every batch leaf needs the same leading batch size, got {sizes}.")
  (size,) = sizes
  n_local = len(mesh.local_devices)
  if size % n_local:
    raise ValueError(f"Local batch size {size} is not divisible by the {n_local} local devices.")
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
  )


def fetch(tree: PyTree) -> PyTree:
  """Host copy (NumPy) of a replicated pytree; valid in multi-process runs too.

  `np.asarray` refuses arrays that span other processes' devices, but every process
  holds a full copy of a replicated array, so its first local shard is the value.
  """

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if not x.sharding.is_fully_replicated:
        raise ValueError("fetch() needs replicated arrays; got a sharded multi-process array.")
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)

  return jax.tree.map(one, tree)


# ------------------------------------------------------------------------- state


class TrainState(flax.struct.PyTreeNode):
  """Everything a resumed run needs, as one pytree (apply_fn / tx are static).

  `model_state` holds the non-trainable variable collections (e.g. batch_stats,
  vq_state) as a dict keyed by collection name. `rng` is a raw uint32 key (key data,
  not a typed key) so that it checkpoints like any other array. `ema_params` is an
  exponential moving average of `params` (Polyak averaging, `ema_decay`), or None
  when the run keeps none; evaluation and export then use the average.
  """

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  model_state: PyTree
  rng: jax.Array
  apply_fn: Callable[..., Any] | None = flax.struct.field(pytree_node=False, default=None)
  tx: optax.GradientTransformation | None = flax.struct.field(pytree_node=False, default=None)
  ema_params: PyTree = None
  ema_decay: float = flax.struct.field(pytree_node=False, default=0.0)

  @property
  def variables(self) -> dict[str, PyTree]:
    """params + model_state in the layout `flax.linen.Module.apply` expects."""
    return {"params": self.params, **self.model_state}

  @property
  def eval_variables(self) -> dict[str, PyTree]:
    """`variables` with the averaged parameters when the run keeps an average."""
    params = self.params if self.ema_params is None else self.ema_params
    return {"params": params, **self.model_state}


def ema_update(ema: PyTree, params: PyTree, step: jax.Array, decay: float) -> PyTree:
  """One step of the parameter average after optimizer step `step` (0-based).

  The decay ramps up as min(decay, (1 + step) / (10 + step)), so the average is not
  dominated by the initialisation in the first hundred steps.
  """
  t = step.astype(jnp.float32)
  d = jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(p.dtype), ema, params)


def _raw_key(rng: jax.Array) -> np.ndarray:
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  return np.asarray(rng, dtype=np.uint32)


def _abstract_like(tree: PyTree) -> PyTree:
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


def create_train_state(
    *,
    init_fn: Callable[[jax.Array, PyTree], Mapping[str, PyTree]],
    tx: optax.GradientTransformation,
    rng: jax.Array,
    mesh: Mesh,
    example_batch: PyTree,
    apply_fn: Callable[..., Any] | None = None,
    ema_decay: float = 0.0,
) -> TrainState:
  """Initialises a `TrainState` directly in replicated sharding on `mesh`.

  Args:
    init_fn: `(rng, batch) -> variables`, e.g. `lambda r, b: model.init(r, b["x"],
      train=False)`. `variables["params"]` become the trainable parameters; every
      other collection goes to `model_state`. The batch it sees is zeros of
      `example_batch`'s shapes (only shapes matter, and zeros keep all processes'
      initialisations identical); data-dependent initialisation belongs in a
      separate step.
    tx: the optax optimizer.
    rng: a key (typed or raw); it is split into an init key and the state's key.
    mesh: the data mesh; everything is replicated over it.
    example_batch: pytree of arrays or ShapeDtypeStructs shaped like one batch.
    apply_fn: stored on the state for convenience (not used here).
    ema_decay: in (0, 1): the state keeps `ema_params`, a moving average of the
      parameters updated by every train step (`ema_update`); 0: none.
  """
  if not 0.0 <= ema_decay < 1.0:
    raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}.")
  keys = jax.random.split(jax.random.wrap_key_data(_raw_key(rng)))
  init_rng, state_rng = np.asarray(jax.random.key_data(keys))
  batch_shapes = _abstract_like(example_batch)

  def init() -> TrainState:
    # The keys are NumPy constants captured by the trace, so every process builds
    # the same replicated state without passing host-local arrays into jit.
    batch = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), batch_shapes)
    variables = dict(init_fn(jnp.asarray(init_rng), batch))
    if "params" not in variables:
      raise ValueError(f"init_fn returned collections {sorted(variables)}, no 'params'.")
    params = variables.pop("params")
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        model_state=variables,
        rng=jnp.asarray(state_rng),
        apply_fn=apply_fn,
        tx=tx,
        ema_params=jax.tree.map(jnp.copy, params) if ema_decay > 0 else None,
        ema_decay=float(ema_decay),
    )

  abstract = jax.eval_shape(init)
  shardings = jax.tree.map(lambda _: replicated(mesh), abstract)
  return jax.jit(init, out_shardings=shardings)()


def abstract_state(state: TrainState) -> TrainState:
  """ShapeDtypeStructs (with shardings) of a state: a restore target that holds no memory."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), state
  )


# ------------------------------------------------------------------------- steps


def make_train_step(
    loss_fn: LossFn,
    *,
    mesh: Mesh,
    donate: bool = True,
    post_update: PostUpdateFn | None = None,
) -> Callable[[TrainState, PyTree], tuple[TrainState, Metrics]]:
  """Jitted `train_step(state, batch) -> (state, metrics)` for data parallelism.

  `loss_fn(params, model_state, batch, rng, step) -> (loss, (new_model_state,
  metrics))` sees the global batch; its loss must be a mean over that batch so that
  the step does not depend on how many devices share it. The rng is
  `fold_in(state.rng, state.step)`, so a resumed run draws the same randomness.
  `post_update(state, batch, rng)` runs after the optimizer update with an rng
  independent of the loss's (e.g. VQ dead-code restart). Metrics: the loss_fn's,
  plus loss, grad_norm, param_norm, update_norm (global L2 norms).
  """

  def train_step(state: TrainState, batch: PyTree) -> tuple[TrainState, Metrics]:
    step_rng = jax.random.fold_in(state.rng, state.step)
    loss_rng, post_rng = jax.random.split(step_rng)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (new_model_state, aux)), grads = grad_fn(
        state.params, state.model_state, batch, loss_rng, state.step
    )
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema_params
    if ema is not None:
      ema = ema_update(ema, params, state.step, state.ema_decay)
    new_state = state.replace(
        step=state.step + 1,
        params=params,
        opt_state=opt_state,
        model_state=new_model_state,
        ema_params=ema,
    )
    if post_update is not None:
      new_state = post_update(new_state, batch, post_rng)
    metrics = dict(aux)
    metrics.update(
        loss=loss,
        grad_norm=optax.global_norm(grads),
        param_norm=optax.global_norm(params),
        update_norm=optax.global_norm(updates),
    )
    return new_state, metrics

  return jax.jit(
      train_step,
      in_shardings=(replicated(mesh), batch_sharding(mesh)),
      out_shardings=(replicated(mesh), replicated(mesh)),
      donate_argnums=(0,) if donate else (),
  )


def make_eval_step(
    eval_fn: Callable[[TrainState, PyTree], PyTree],
    *,
    mesh: Mesh,
    batch_sharded_output: bool = False,
) -> Callable[[TrainState, PyTree], PyTree]:
  """Jitted `eval_step(state, batch) -> outputs` (no donation).

  Outputs are replicated by default (reduced metrics); with
  `batch_sharded_output=True` they stay split along the data axis like the batch
  (per-example predictions, e.g. for whole-video HR metrics collected on the host).
  """
  out = batch_sharding(mesh) if batch_sharded_output else replicated(mesh)
  return jax.jit(eval_fn, in_shardings=(replicated(mesh), batch_sharding(mesh)), out_shardings=out)


def check_finite(metrics: Mapping[str, Any], step: int) -> None:
  """Raises FloatingPointError naming the step and every non-finite metric."""
  bad = {k: v for k, v in metrics.items() if not np.all(np.isfinite(np.asarray(v)))}
  if bad:
    detail = ", ".join(f"{k}={np.asarray(v).tolist()}" for k, v in sorted(bad.items()))
    raise FloatingPointError(f"Non-finite metrics at step {step}: {detail}")


def parameter_overview(params: PyTree, *, include_stats: bool = True) -> str:
  """Table of parameter names, shapes, sizes (and mean/std) via clu."""
  return clu_parameter_overview.get_parameter_overview(fetch(params), include_stats=include_stats)


# -------------------------------------------------------------------------- loop


def average_collection(metrics: Mapping[str, Any]) -> type[clu_metrics.Collection]:
  """A clu Collection averaging each named scalar metric over the steps it sees."""
  return clu_metrics.Collection.create(
      **{name: clu_metrics.Average.from_output(name) for name in metrics}
  )


def _every(step: int, period: int | None, last_step: int) -> bool:
  return step == last_step or (period is not None and period > 0 and step % period == 0)


def train_loop(
    state: TrainState,
    *,
    train_step: Callable[[TrainState, PyTree], tuple[TrainState, Metrics]],
    make_iterator: Callable[[int], Iterable[PyTree]],
    num_steps: int,
    mesh: Mesh,
    checkpointer: Any | None = None,
    writer: Any | None = None,
    log_every: int = 100,
    checkpoint_every: int | None = 1000,
    eval_every: int | None = None,
    on_eval: Callable[[TrainState, int], Mapping[str, float]] | None = None,
    hooks: Sequence[Callable[[int], Any]] = (),
) -> TrainState:
  """Runs `train_step` from `state.step` up to `num_steps`, resumable at any checkpoint.

  Determinism on resume: the loop calls `make_iterator(start_step)` with the step the
  state is at, and the iterator must yield the batch for step `start_step` first
  (local, per-process NumPy pytrees). With a deterministic factory (e.g. skip
  `start_step * local_batch` examples of a fixed-order stream, or seed a shuffle by
  epoch and index into it) a resumed run sees exactly the batches an uninterrupted
  run would; together with the step-folded rng and restored optimizer state that
  makes resumption bit-for-bit.

  Every `log_every` steps (and at the last step) the metrics averaged (clu
  `Average`) over the steps since the previous log are fetched, checked with
  `check_finite` (a NaN at any step of the window shows) and written to `writer` (clu MetricWriter) together
  with steps/s. Every `eval_every` steps and at the end, `on_eval(state, step)`
  returns host metrics, written with an "eval/" prefix and passed to the
  checkpointer, which uses them for best-checkpoint tracking. Checkpoints are saved
  every `checkpoint_every` steps, at every evaluation and at the end; the
  checkpointer's own interval does not veto these saves. `hooks` are called with the
  completed step number after every step (clu periodic actions fit as they are).
  """
  start = int(fetch(state.step))
  if start >= num_steps:
    logging.info(
        "train_loop: state is at step %d >= num_steps %d, nothing to do.", start, num_steps
    )
    return state
  batches: Iterator[PyTree] = iter(make_iterator(start))
  t_last, step_last = time.perf_counter(), start
  collection = None
  window = None  # clu Average of every metric since the last log step (on device)
  for step in range(start, num_steps):
    try:
      local_batch = next(batches)
    except StopIteration:
      raise ValueError(f"Data iterator ran out at step {step} (< num_steps={num_steps}).") from None
    state, metrics = train_step(state, shard_batch(mesh, local_batch))
    done = step + 1
    if collection is None:
      collection = average_collection(metrics)
    update = collection.single_from_model_output(**metrics)
    window = update if window is None else window.merge(update)
    for hook in hooks:
      hook(done)
    if _every(done, log_every, num_steps):
      host = {k: np.asarray(v) for k, v in window.compute().items()}
      window = None
      check_finite(host, done)
      now = time.perf_counter()
      train_metrics = {k: float(np.mean(v)) for k, v in host.items()}
      train_metrics["steps_per_sec"] = (done - step_last) / max(now - t_last, 1e-9)
      t_last, step_last = now, done
      if writer is not None:
        writer.write_scalars(done, {f"train/{k}": v for k, v in train_metrics.items()})
    save_metrics = None
    if on_eval is not None and _every(done, eval_every, num_steps):
      eval_metrics = {k: float(v) for k, v in on_eval(state, done).items()}
      check_finite(eval_metrics, done)
      save_metrics = eval_metrics
      if writer is not None:
        writer.write_scalars(done, {f"eval/{k}": v for k, v in eval_metrics.items()})
    if checkpointer is not None and (
        save_metrics is not None or _every(done, checkpoint_every, num_steps)
    ):
      checkpointer.save(done, state, metrics=save_metrics, force=True)
  if writer is not None:
    writer.flush()
  if checkpointer is not None:
    checkpointer.wait()
  return state


def num_params(params: PyTree) -> int:
  """Total number of parameters."""
  return int(sum(math.prod(np.shape(x)) for x in jax.tree.leaves(params)))
