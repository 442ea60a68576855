"""VectorQuantizer: nearest codes, straight-through, EMA vs a NumPy reference, dead-code restart;
Stage I's speed augmentation of the label clips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codephys_jax.models.vector_quantizer import VectorQuantizer, restart_dead_codes
from codephys_jax.stages import codebook as codebook_stage
from configs import default as default_config
from fake_videos import FakeVideos

K, D = 16, 8


def _np_assign(z, cb):
  d = ((z[:, None, :].astype(np.float64) - cb[None].astype(np.float64)) ** 2).sum(-1)
  return d.argmin(-1)


@pytest.fixture(scope="module")
def z():
  return jax.random.normal(jax.random.key(1), (3, 10, D))


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_nearest_indices_match_bruteforce(z, update):
  vq = VectorQuantizer(num_codes=K, code_dim=D, update=update)
  v = vq.init(jax.random.key(0), z, train=False)
  out = vq.apply(v, z, train=False)
  cb = np.asarray(vq.apply(v, method=VectorQuantizer.get_codebook))
  idx = _np_assign(np.asarray(z).reshape(-1, D), cb).reshape(3, 10)
  np.testing.assert_array_equal(np.asarray(out.indices), idx)
  np.testing.assert_allclose(np.asarray(out.quantized), cb[idx], atol=1e-6)
  np.testing.assert_allclose(
      np.asarray(vq.apply(v, out.indices, method=VectorQuantizer.embed)), cb[idx]
  )
  d_ref = ((np.asarray(z)[..., None, :] - cb) ** 2).sum(-1)
  np.testing.assert_allclose(np.asarray(out.distances), d_ref, rtol=1e-4, atol=1e-4)
  err = np.mean((np.asarray(z) - cb[idx]) ** 2)
  expected_loss = (1.0 + 0.25) * err if update == "loss" else 0.25 * err
  np.testing.assert_allclose(float(out.loss), expected_loss, rtol=1e-5)


def test_straight_through_gradient_is_identity(z):
  vq = VectorQuantizer(num_codes=K, code_dim=D, update="loss")
  v = vq.init(jax.random.key(0), z, train=False)
  g = jax.random.normal(jax.random.key(7), z.shape)
  grad = jax.grad(lambda zz: jnp.sum(vq.apply(v, zz, train=False).quantized * g))(z)
  np.testing.assert_array_equal(np.asarray(grad), np.asarray(g))


def test_perplexity_and_usage_match_numpy(z):
  vq = VectorQuantizer(num_codes=K, code_dim=D, update="loss")
  v = vq.init(jax.random.key(0), z, train=False)
  out = vq.apply(v, z, train=False)
  counts = np.bincount(np.asarray(out.indices).ravel(), minlength=K)
  p = counts / counts.sum()
  nz = p[p > 0]
  np.testing.assert_allclose(float(out.perplexity), np.exp(-(nz * np.log(nz)).sum()), rtol=1e-5)
  np.testing.assert_allclose(float(out.usage), (counts > 0).mean(), rtol=1e-6)


def test_ema_update_matches_numpy_two_steps(z):
  decay, eps = 0.9, 1e-5
  vq = VectorQuantizer(num_codes=K, code_dim=D, update="ema", ema_decay=decay, epsilon=eps)
  v = vq.init(jax.random.key(0), z, train=True)
  st = {k: np.asarray(a, np.float64) for k, a in v["vq_state"].items()}
  # Init must be self-consistent: count 1, sum == code.
  np.testing.assert_array_equal(st["cluster_size"], np.ones(K))
  np.testing.assert_array_equal(st["embed_sum"], st["codebook"])
  cs, es, cb = st["cluster_size"], st["embed_sum"], st["codebook"]
  batches = [np.asarray(z), np.asarray(z) * 0.5 + 0.3]
  for zb in batches:
    out, mut = vq.apply(v, jnp.asarray(zb, jnp.float32), train=True, mutable=["vq_state"])
    zf = zb.reshape(-1, D).astype(np.float64)
    idx = _np_assign(zf, cb)
    np.testing.assert_array_equal(np.asarray(out.indices).ravel(), idx)
    onehot = np.eye(K)[idx]
    cs = decay * cs + (1 - decay) * onehot.sum(0)
    es = decay * es + (1 - decay) * onehot.T @ zf
    n = cs.sum()
    cb = es / ((cs + eps) / (n + K * eps) * n)[:, None]
    new = mut["vq_state"]
    np.testing.assert_allclose(np.asarray(new["cluster_size"]), cs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new["embed_sum"]), es, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new["codebook"]), cb, rtol=1e-4, atol=1e-5)
    v = {"vq_state": new}


def test_ema_state_frozen_in_eval_and_when_immutable(z):
  vq = VectorQuantizer(num_codes=K, code_dim=D, update="ema")
  v = vq.init(jax.random.key(0), z, train=True)
  _, mut = vq.apply(v, z, train=False, mutable=["vq_state"])
  for k in v["vq_state"]:
    np.testing.assert_array_equal(np.asarray(mut["vq_state"][k]), np.asarray(v["vq_state"][k]))
  vq.apply(v, z, train=True)  # immutable state: must not raise, simply no update
  # The EMA codebook is not a trainable parameter.
  assert "params" not in v or not v["params"]


def test_soft_quantize_low_temperature_approaches_nearest(z):
  vq = VectorQuantizer(num_codes=K, code_dim=D, update="loss")
  v = vq.init(jax.random.key(0), z, train=False)
  hard = vq.apply(v, z, train=False).quantized
  soft_cold, w = vq.apply(v, z, 1e-4, method=VectorQuantizer.soft_quantize)
  soft_warm, _ = vq.apply(v, z, 100.0, method=VectorQuantizer.soft_quantize)
  np.testing.assert_allclose(np.asarray(soft_cold), np.asarray(hard), atol=1e-4)
  np.testing.assert_allclose(np.asarray(w.sum(-1)), 1.0, rtol=1e-5)
  assert float(jnp.abs(soft_warm - hard).max()) > 1e-2


def test_restart_replaces_only_dead_codes_under_jit():
  state = {
      "codebook": jnp.arange(K * D, dtype=jnp.float32).reshape(K, D),
      "cluster_size": jnp.where(jnp.arange(K) % 2 == 0, 5.0, 0.01),
      "embed_sum": jnp.ones((K, D)),
  }
  zf = 100.0 + jax.random.normal(jax.random.key(3), (40, D))
  nested = {"quantizer": state}
  new = jax.jit(lambda s, zz, r: restart_dead_codes(s, zz, r, threshold=0.1))(
      nested, zf, jax.random.key(4)
  )
  new = new["quantizer"]
  dead = np.arange(K) % 2 == 1
  np.testing.assert_array_equal(
      np.asarray(new["codebook"])[~dead], np.asarray(state["codebook"])[~dead]
  )
  np.testing.assert_array_equal(np.asarray(new["cluster_size"])[dead], 1.0)
  np.testing.assert_array_equal(
      np.asarray(new["embed_sum"])[dead], np.asarray(new["codebook"])[dead]
  )
  zset = {tuple(r) for r in np.asarray(zf)}
  assert all(tuple(r) in zset for r in np.asarray(new["codebook"])[dead])
  with pytest.raises(ValueError, match="no quantizer state"):
    restart_dead_codes({}, zf, jax.random.key(0))


def test_dead_code_restart_recovers_from_collapse():
  decay, thr = 0.5, 0.1
  vq = VectorQuantizer(
      num_codes=K, code_dim=D, update="ema", ema_decay=decay, dead_code_threshold=thr
  )
  centre = 3.0 * jnp.ones((D,))

  def batch(i):
    return centre + 0.05 * jax.random.normal(jax.random.key(100 + i), (4, 16, D))

  v = vq.init(jax.random.key(0), batch(0), train=True)
  step = jax.jit(lambda vv, zz: vq.apply(vv, zz, train=True, mutable=["vq_state"]))
  for i in range(8):  # collapse: every input maps to one code, the rest decay towards 0
    out, v = step(v, batch(i))
  assert int(np.unique(np.asarray(out.indices)).size) == 1
  dead = np.asarray(v["vq_state"]["cluster_size"]) < thr
  assert dead.sum() == K - 1
  used = set()
  for i in range(8, 14):
    zb = batch(i)
    v = {"vq_state": restart_dead_codes(v["vq_state"], zb, jax.random.key(i), threshold=thr)}
    out, v = step(v, zb)
    used |= set(np.unique(np.asarray(out.indices)).tolist())
    assert np.all(np.isfinite(np.asarray(v["vq_state"]["codebook"])))
  assert float(out.usage) * K > 1
  assert len(used) > 1
  assert float(np.asarray(v["vq_state"]["cluster_size"]).max()) > thr


def test_bad_update_rule_raises(z):
  with pytest.raises(ValueError, match="update"):
    VectorQuantizer(num_codes=K, code_dim=D, update="sgd").init(jax.random.key(0), z, train=False)


def test_stage1_speed_augment_resamples_the_labels_on_the_host():
  config = default_config.get_config()
  config.clip_length = 32
  assert config.codebook.speed_augment and config.augment.target_hr_bpm
  videos = FakeVideos([200, 150], ppg=lambda i, n: np.sin(2 * np.pi * 1.5 * np.arange(n) / 30.0))
  clips, augment, pipeline = codebook_stage._train_clips(config, videos)
  assert pipeline == "host" and clips.source_length > 32
  rates = []
  for seed in range(20):
    ppg = augment(clips[seed % len(clips)], np.random.default_rng(seed))["ppg"]
    assert ppg.shape == (32,)
    spec = np.abs(np.fft.rfft(ppg * np.hanning(32), 512))
    rates.append(60 * 30.0 * np.argmax(spec) / 512)
  assert max(rates) - min(rates) > 40  # not the source's 90 bpm alone
  config.input_pipeline = "device"
  with pytest.raises(ValueError, match="speed_augment runs on the host"):
    codebook_stage._train_clips(config, videos)
  config.codebook.speed_augment = False
  config.input_pipeline = "auto"
  clips, augment, pipeline = codebook_stage._train_clips(config, videos)
  assert augment is None and pipeline == "auto" and clips.source_length == 32
