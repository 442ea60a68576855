"""Tests for codephys_jax.trainer: mesh/sharding, data-parallel equivalence, metrics, loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from codephys_jax import tb_writer
from codephys_jax import trainer
import tiny_net
from tiny_net import TinyNet

T, C, B = 16, 3, 16  # signal length, channels, global batch


MODEL = TinyNet(features=4, momentum=0.9, dropout=0.25)
init_fn = tiny_net.init_fn(MODEL)
loss_fn = tiny_net.mse_loss_fn(
    MODEL, metrics=lambda pred, step: {"pred_mean": pred.mean(), "step_seen": step.astype(jnp.float32)}
)


def make_batch(step, n=B):
  rs = np.random.RandomState(1000 + step)
  return {"x": rs.randn(n, T, C).astype(np.float32), "y": rs.randn(n).astype(np.float32)}


def _run(mesh, tx, steps, *, donate=True):
  state = trainer.create_train_state(
      init_fn=init_fn, tx=tx, rng=jax.random.key(0), mesh=mesh, example_batch=make_batch(0)
  )
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh, donate=donate)
  losses = []
  for s in range(steps):
    state, metrics = step_fn(state, trainer.shard_batch(mesh, make_batch(s)))
    losses.append(float(metrics["loss"]))
  return state, losses, metrics


def test_make_mesh_and_batch_sharding_spread():
  mesh = trainer.make_mesh()
  assert mesh.devices.size == len(jax.devices()) == 8
  assert mesh.axis_names == ("data",)
  batch = trainer.shard_batch(mesh, make_batch(0))
  x = batch["x"]
  assert x.shape == (B, T, C)
  assert x.sharding.is_equivalent_to(trainer.batch_sharding(mesh), x.ndim)
  shards = x.addressable_shards
  assert len({s.device for s in shards}) == 8
  assert all(s.data.shape == (B // 8, T, C) for s in shards)
  # The shards hold consecutive rows of the local batch, in device order.
  rows = sorted((s.index[0].start, np.asarray(s.data)) for s in shards)
  np.testing.assert_array_equal(np.concatenate([r for _, r in rows]), make_batch(0)["x"])


def test_shard_batch_rejects_bad_sizes():
  mesh = trainer.make_mesh()
  with pytest.raises(ValueError, match="not divisible"):
    trainer.shard_batch(mesh, {"x": np.zeros((6, 2))})
  with pytest.raises(ValueError, match="same leading batch size"):
    trainer.shard_batch(mesh, {"x": np.zeros((8, 2)), "y": np.zeros((16,))})


def test_state_is_replicated_and_split():
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.adam(1e-3),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  assert set(state.model_state) == {"batch_stats"}
  for leaf in jax.tree.leaves(state):
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 8
  assert int(state.step) == 0 and state.rng.dtype == jnp.uint32
  # Same seed, same parameters as a plain model.init with the derived init key.
  init_key = jax.random.split(jax.random.key(0))[0]
  ref = MODEL.init(init_key, jnp.zeros((B, T, C)), train=False)
  chex_equal = jax.tree.map(
      lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), state.params, ref["params"]
  )
  assert all(jax.tree.leaves(chex_equal))


def test_eight_devices_match_one_device():
  tx = optax.adam(1e-2)
  s8, l8, _ = _run(trainer.make_mesh(), tx, 3)
  s1, l1, _ = _run(trainer.make_mesh(devices=jax.devices()[:1]), tx, 3)
  np.testing.assert_allclose(l8, l1, rtol=1e-5, atol=1e-6)
  for a, b in zip(
      jax.tree.leaves(trainer.fetch(s8.params)), jax.tree.leaves(trainer.fetch(s1.params))
  ):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # BatchNorm running stats are global-batch statistics on both meshes.
  for a, b in zip(
      jax.tree.leaves(trainer.fetch(s8.model_state)), jax.tree.leaves(trainer.fetch(s1.model_state))
  ):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert l8[-1] != l8[0]


def test_metrics_match_independent_reference():
  mesh = trainer.make_mesh()
  lr = 0.1
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.sgd(lr),
      rng=jax.random.key(3),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  params0 = trainer.fetch(state.params)
  ms0, rng0 = trainer.fetch(state.model_state), trainer.fetch(state.rng)
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh, donate=False)
  new_state, metrics = step_fn(state, trainer.shard_batch(mesh, make_batch(0)))
  m = trainer.fetch(metrics)
  # Reference without any sharding, with the documented rng derivation.
  rng = jax.random.split(jax.random.fold_in(jnp.asarray(rng0), 0))[0]
  (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params0, ms0, make_batch(0), rng, jnp.int32(0)
  )
  gnorm = np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in jax.tree.leaves(grads)))
  params1 = trainer.fetch(new_state.params)
  pnorm = np.sqrt(
      sum(np.sum(np.square(np.asarray(p, np.float64))) for p in jax.tree.leaves(params1))
  )
  np.testing.assert_allclose(m["loss"], loss, rtol=1e-5)
  np.testing.assert_allclose(m["grad_norm"], gnorm, rtol=1e-5)
  np.testing.assert_allclose(m["param_norm"], pnorm, rtol=1e-5)
  np.testing.assert_allclose(m["update_norm"], lr * gnorm, rtol=1e-5)  # plain SGD
  assert m["step_seen"] == 0.0 and "pred_mean" in m
  assert int(new_state.step) == 1
  # Non-donated input state is still usable.
  assert np.isfinite(trainer.fetch(state.params)["Dense_0"]["kernel"]).all()


def test_post_update_hook_and_donation():
  mesh = trainer.make_mesh()

  def post_update(state, batch, rng):
    # Replace the Dense bias by a deterministic function of rng and batch.
    bias = jax.random.uniform(rng, (1,)) + batch["y"].sum()
    return state.replace(
        params={**state.params, "Dense_0": {**state.params["Dense_0"], "bias": bias}}
    )

  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.sgd(0.1),
      rng=jax.random.key(5),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  rng0 = trainer.fetch(state.rng)
  old_kernel = state.params["Conv_0"]["kernel"]
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh, post_update=post_update)
  state, _ = step_fn(state, trainer.shard_batch(mesh, make_batch(0)))
  assert old_kernel.is_deleted()  # donated by default
  post_rng = jax.random.split(jax.random.fold_in(jnp.asarray(rng0), 0))[1]
  expected = np.asarray(jax.random.uniform(post_rng, (1,))) + make_batch(0)["y"].sum()
  np.testing.assert_allclose(trainer.fetch(state.params)["Dense_0"]["bias"], expected, rtol=1e-6)


def test_check_finite_names_step_and_metric():
  trainer.check_finite({"loss": np.float32(1.0), "v": np.ones(3)}, step=3)
  with pytest.raises(FloatingPointError, match=r"step 17: .*grad_norm=inf"):
    trainer.check_finite({"loss": 1.0, "grad_norm": np.inf}, step=17)
  with pytest.raises(FloatingPointError, match=r"loss=nan"):
    trainer.check_finite({"loss": np.nan}, step=2)


class RecordingWriter:

  def __init__(self):
    self.scalars = {}
    self.flushed = False

  def write_scalars(self, step, scalars):
    self.scalars.setdefault(step, {}).update(scalars)

  def flush(self):
    self.flushed = True


def test_train_loop_logs_evaluates_and_stops_on_nan():
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.adam(1e-2),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh)
  starts, hook_steps, eval_steps = [], [], []

  def make_iterator(start):
    starts.append(start)
    return (make_batch(s) for s in range(start, 10**6))

  def on_eval(state, step):
    eval_steps.append(step)
    return {"mae": 1.0 / step}

  writer = RecordingWriter()
  ticks = iter(range(100))  # one second per hook call: a report at step 4 and the last step
  progress = tb_writer.ProgressReport(
      num_train_steps=5, every_secs=2.5, writer=writer, clock=lambda: float(next(ticks))
  )
  state = trainer.train_loop(
      state,
      train_step=step_fn,
      make_iterator=make_iterator,
      num_steps=5,
      mesh=mesh,
      writer=writer,
      log_every=2,
      eval_every=3,
      on_eval=on_eval,
      hooks=[hook_steps.append, progress],
  )
  assert int(state.step) == 5 and starts == [0]
  assert hook_steps == [1, 2, 3, 4, 5]
  assert eval_steps == [3, 5]
  assert sorted(writer.scalars) == [2, 3, 4, 5] and writer.flushed
  assert {"train/loss", "train/grad_norm", "train/steps_per_sec"} <= set(writer.scalars[2])
  assert writer.scalars[3] == {"eval/mae": pytest.approx(1 / 3)}
  assert "steps_per_sec" in writer.scalars[4]  # written by the ProgressReport hook
  # Resuming past the end is a no-op; the iterator is not even built.
  assert (
      trainer.train_loop(
          state, train_step=step_fn, make_iterator=make_iterator, num_steps=5, mesh=mesh
      )
      is state
  )
  assert starts == [0]

  # A NaN input poisons the loss at step 7; the next log step (8) reports it.
  def nan_iterator(start):
    starts.append(start)
    for s in range(start, 100):
      b = make_batch(s)
      if s == 6:
        b["x"][0, 0, 0] = np.nan
      yield b

  with pytest.raises(FloatingPointError, match=r"step 8: .*loss=nan"):
    trainer.train_loop(
        state, train_step=step_fn, make_iterator=nan_iterator, num_steps=10, mesh=mesh, log_every=4
    )
  assert starts[-1] == 5


def test_train_loop_reports_short_iterator():
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.sgd(0.1),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh)
  with pytest.raises(ValueError, match="ran out at step 2"):
    trainer.train_loop(
        state,
        train_step=step_fn,
        mesh=mesh,
        num_steps=4,
        make_iterator=lambda s: [make_batch(i) for i in range(s, 2)],
    )


def test_eval_step_outputs():
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.sgd(0.1),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=make_batch(0),
  )

  def predict(state, batch):
    return MODEL.apply(state.variables, batch["x"], train=False)

  batch = make_batch(1)
  preds = trainer.make_eval_step(predict, mesh=mesh, batch_sharded_output=True)(
      state, trainer.shard_batch(mesh, batch)
  )
  assert len({s.device for s in preds.addressable_shards}) == 8
  ref = MODEL.apply(trainer.fetch(state.variables), batch["x"], train=False)
  np.testing.assert_allclose(np.asarray(preds), ref, rtol=1e-5, atol=1e-6)
  mse = trainer.make_eval_step(lambda s, b: jnp.mean((predict(s, b) - b["y"]) ** 2), mesh=mesh)(
      state, trainer.shard_batch(mesh, batch)
  )
  np.testing.assert_allclose(float(mse), np.mean((np.asarray(ref) - batch["y"]) ** 2), rtol=1e-5)


def test_parameter_overview_and_batch_helpers():
  mesh = trainer.make_mesh()
  state = trainer.create_train_state(
      init_fn=init_fn,
      tx=optax.sgd(0.1),
      rng=jax.random.key(0),
      mesh=mesh,
      example_batch=make_batch(0),
  )
  text = trainer.parameter_overview(state.params)
  expected = 3 * 3 * 4 + 4 + 4 + 4 * 1 + 1  # conv k, bn scale+bias, dense k+b
  assert trainer.num_params(state.params) == expected
  assert "Conv_0/kernel" in text and "(3, 3, 4)" in text and f"{expected:,}" in text
  assert trainer.process_shard(16) == (0, 1)
  assert trainer.local_batch_size(16, mesh) == 16
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    trainer.local_batch_size(12, mesh)
