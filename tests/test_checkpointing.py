"""Tests for codephys_jax.checkpointing: kill/resume equality, best+last retention, load_params."""

import gc
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from codephys_jax import checkpointing, trainer
import tiny_net
from tiny_net import TinyNet

T, C, B = 8, 2, 8


MODEL = TinyNet(features=3, momentum=0.8, dropout=0.2)
TX = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-2, weight_decay=1e-3))
CONFIG = {"model": "tiny", "lr": 3e-2, "nested": {"a": [1, 2]}}
init_fn = tiny_net.init_fn(MODEL)
loss_fn = tiny_net.mse_loss_fn(MODEL)


def batch_for_step(step):
  rs = np.random.RandomState(step)
  return {"x": rs.randn(B, T, C).astype(np.float32), "y": rs.randn(B).astype(np.float32)}


def make_iterator(start):
  return (batch_for_step(s) for s in range(start, 10**6))


def fresh_state(mesh, seed):
  return trainer.create_train_state(
      init_fn=init_fn, tx=TX, rng=jax.random.key(seed), mesh=mesh, example_batch=batch_for_step(0)
  )


def run(workdir, *, seed, num_steps, mesh, checkpoint_every):
  """One 'process lifetime': build everything, resume if possible, train, return host copy."""
  ckpt = checkpointing.Checkpointer(workdir, max_to_keep=5, meta=CONFIG)
  state = fresh_state(mesh, seed)
  restored = ckpt.restore_latest(state)
  state = state if restored is None else restored
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh)
  state = trainer.train_loop(
      state,
      train_step=step_fn,
      make_iterator=make_iterator,
      num_steps=num_steps,
      mesh=mesh,
      checkpointer=ckpt,
      checkpoint_every=checkpoint_every,
      log_every=100,
  )
  out = trainer.fetch(state)
  ckpt.close()
  return out


def assert_trees_equal(a, b):
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_kill_and_resume_is_bitwise_identical(tmp_path):
  mesh = trainer.make_mesh()
  full = run(tmp_path / "full", seed=0, num_steps=6, mesh=mesh, checkpoint_every=3)
  # "Killed" after 3 steps; then a new process (new objects, different init seed to
  # prove the restore, not the seed, supplies the state) resumes to step 6.
  run(tmp_path / "killed", seed=0, num_steps=3, mesh=mesh, checkpoint_every=3)
  gc.collect()
  resumed = run(tmp_path / "killed", seed=123, num_steps=6, mesh=mesh, checkpoint_every=3)
  assert int(resumed.step) == 6
  assert_trees_equal(resumed.params, full.params)
  assert_trees_equal(resumed.opt_state, full.opt_state)
  assert_trees_equal(resumed.model_state, full.model_state)
  assert_trees_equal(resumed.rng, full.rng)
  # Training changed the parameters, so equality is not trivial.
  other = trainer.fetch(fresh_state(mesh, 0))
  assert not np.array_equal(other.params["Dense_0"]["kernel"], full.params["Dense_0"]["kernel"])
  # The uninterrupted run saved step 3 asynchronously and then donated that state to
  # step 4: its step-3 checkpoint must still equal the killed run's.
  p_full, ms_full, meta = checkpointing.load_params(tmp_path / "full", step=3)
  p_killed, ms_killed, _ = checkpointing.load_params(tmp_path / "killed", step=3)
  assert_trees_equal(trainer.fetch(p_full), trainer.fetch(p_killed))
  assert_trees_equal(trainer.fetch(ms_full), trainer.fetch(ms_killed))
  assert meta == {**CONFIG, "step": 3}  # load_params adds the step it read


def _marked_state(state, value):
  """A state whose parameters all equal `value`: identifies the checkpoint it came from."""
  return state.replace(
      step=jnp.int32(value), params=jax.tree.map(lambda p: jnp.full_like(p, value), state.params)
  )


@pytest.mark.parametrize(
    "mode,values,best",
    [
        ("min", [5.0, 1.0, 4.0, 3.0, 2.5, 2.6], 2),
        ("max", [0.1, 0.9, 0.2, 0.3, 0.5, 0.4], 2),
    ],
)
def test_best_and_latest_are_kept(tmp_path, mode, values, best):
  mesh = trainer.make_mesh()
  state = fresh_state(mesh, 0)
  ckpt = checkpointing.Checkpointer(
      tmp_path, max_to_keep=2, best_metric="mae", best_mode=mode, meta=CONFIG
  )
  for step, v in enumerate(values, start=1):
    assert ckpt.save(step, _marked_state(state, step), metrics={"mae": v, "other": -v})
  # A checkpoint without metrics (e.g. a periodic one) only takes a "latest" slot.
  assert ckpt.save(7, _marked_state(state, 7))
  ckpt.wait()
  assert ckpt.all_steps() == [best, 6, 7]
  assert sorted(int(d) for d in os.listdir(tmp_path) if d.isdigit()) == [best, 6, 7]
  assert ckpt.best_step() == best and ckpt.latest_step() == 7
  restored = ckpt.restore_best(state)
  assert int(restored.step) == best
  np.testing.assert_array_equal(trainer.fetch(restored.params)["Dense_0"]["kernel"], best)
  # The restored state lands in the target's shardings.
  for leaf, ref in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    assert leaf.sharding.is_equivalent_to(ref.sharding, leaf.ndim)
  latest = ckpt.restore_latest(trainer.abstract_state(state))
  assert int(latest.step) == 7 and latest.tx is TX
  ckpt.close()
  # load_params finds the best by itself, or the latest on request.
  params, model_state, meta = checkpointing.load_params(tmp_path, which="best")
  np.testing.assert_array_equal(trainer.fetch(params)["Conv_0"]["kernel"], best)
  assert set(model_state) == {"batch_stats"} and meta == {**CONFIG, "step": best}
  params, _, _ = checkpointing.load_params(tmp_path, which="latest")
  np.testing.assert_array_equal(trainer.fetch(params)["Conv_0"]["kernel"], 7)


def test_save_interval_duplicates_and_bad_metrics(tmp_path):
  mesh = trainer.make_mesh()
  state = fresh_state(mesh, 0)
  ckpt = checkpointing.Checkpointer(tmp_path, save_interval_steps=5, best_metric="mae")
  # orbax always writes the first checkpoint of an empty directory (its
  # InitialSavePolicy); after that only multiples of 5, or forced saves.
  assert ckpt.save(3, state)
  assert not ckpt.save(4, state)
  assert ckpt.save(4, state, force=True)
  assert not ckpt.save(4, state, force=True)  # already there
  assert not ckpt.save(6, state, metrics={"mae": 2.0})
  assert ckpt.save(5, state, metrics={"mae": 1.0})
  with pytest.raises(ValueError, match="lack best_metric 'mae'"):
    ckpt.save(10, state, metrics={"loss": 1.0})
  ckpt.wait()
  assert ckpt.all_steps() == [3, 4, 5]
  with pytest.raises(ValueError, match="No checkpoint for step 9"):
    ckpt.restore(9, state)
  ckpt.close()


def test_load_params_other_mesh_and_stateless_optimizer(tmp_path):
  """Written on 8 devices with SGD (empty opt_state, no model_state); read on 1 device."""
  mesh = trainer.make_mesh()

  def init_dense(rng, batch):
    return nn.Dense(2).init(rng, batch["x"])

  example = {"x": np.zeros((8, 3), np.float32)}
  state = trainer.create_train_state(
      init_fn=init_dense, tx=optax.sgd(0.1), rng=jax.random.key(1), mesh=mesh, example_batch=example
  )
  assert jax.tree.leaves(state.opt_state) == [] and state.model_state == {}
  ckpt = checkpointing.Checkpointer(tmp_path / "ck", meta={"name": "teacher"})
  assert ckpt.save(1, state)
  ckpt.wait()
  restored = ckpt.restore_latest(state)
  assert_trees_equal(trainer.fetch(restored.params), trainer.fetch(state.params))
  ckpt.close()
  one = trainer.make_mesh(devices=jax.devices()[:1])
  params, model_state, meta = checkpointing.load_params(tmp_path / "ck", mesh=one)
  assert model_state == {} and meta == {"name": "teacher", "step": 1}
  assert_trees_equal(trainer.fetch(params), trainer.fetch(state.params))
  assert params["kernel"].sharding.device_set == {jax.devices()[0]}
  with open(tmp_path / "ck" / "codephys_checkpointer.json") as f:
    assert json.load(f) == {"best_metric": None, "best_mode": "min"}
  with pytest.raises(FileNotFoundError, match="missing codephys_checkpointer.json"):
    checkpointing.load_params(tmp_path / "nowhere")


def test_parameter_average_trains_resumes_and_is_what_load_params_gives(tmp_path):
  """ema_decay keeps a moving average of the parameters: updated by every step with
  the ramped decay, checkpointed and resumed bit for bit, returned by load_params."""
  mesh = trainer.make_mesh()

  def state_for(seed):
    return trainer.create_train_state(
        init_fn=init_fn,
        tx=TX,
        rng=jax.random.key(seed),
        mesh=mesh,
        example_batch=batch_for_step(0),
        ema_decay=0.9,
    )

  with pytest.raises(ValueError, match="ema_decay"):
    trainer.create_train_state(
        init_fn=init_fn, tx=TX, rng=jax.random.key(0), mesh=mesh,
        example_batch=batch_for_step(0), ema_decay=1.0,
    )
  step_fn = trainer.make_train_step(loss_fn, mesh=mesh, donate=False)
  state = state_for(0)
  assert_trees_equal(trainer.fetch(state.ema_params), trainer.fetch(state.params))
  # The average by hand: decay min(0.9, (1 + t) / (10 + t)) after step t.
  expected = trainer.fetch(state.params)
  for s in range(6):
    state, _ = step_fn(state, trainer.shard_batch(mesh, batch_for_step(s)))
    d = min(0.9, (1 + s) / (10 + s))
    expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, expected, trainer.fetch(state.params))
  for a, b in zip(jax.tree.leaves(trainer.fetch(state.ema_params)), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert not np.allclose(
      jax.tree.leaves(trainer.fetch(state.ema_params))[0],
      jax.tree.leaves(trainer.fetch(state.params))[0],
  )
  assert trainer.fetch(state.eval_variables)["params"] is not None

  def lifetime(workdir, num_steps):
    ckpt = checkpointing.Checkpointer(workdir, max_to_keep=5, meta=CONFIG)
    st = state_for(3)
    restored = ckpt.restore_latest(st)
    st = st if restored is None else restored
    st = trainer.train_loop(
        st,
        train_step=trainer.make_train_step(loss_fn, mesh=mesh),
        make_iterator=make_iterator,
        num_steps=num_steps,
        mesh=mesh,
        checkpointer=ckpt,
        checkpoint_every=4,
        log_every=100,
    )
    out = trainer.fetch(st)
    ckpt.close()
    return out

  whole = lifetime(tmp_path / "whole", 10)
  lifetime(tmp_path / "split", 4)
  resumed = lifetime(tmp_path / "split", 10)
  assert_trees_equal(resumed.ema_params, whole.ema_params)
  assert_trees_equal(resumed.params, whole.params)
  params, _, meta = checkpointing.load_params(tmp_path / "whole", which="latest")
  assert meta["step"] == 10
  assert_trees_equal(trainer.fetch(params), whole.ema_params)
