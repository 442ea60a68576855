"""Model shapes, parameter counts, freezing, Stage I -> Stage II loading, BatchNorm behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codephys_jax.models import (
    CodePhys,
    PPGAutoencoder,
    PhysNetBackbone,
    PhysNetRegression,
    get_backbone,
    get_model,
    FROZEN,
    param_labels,
    stage1_subtrees,
)
from codephys_jax.models.cell_tcn import CellTCNBackbone
from codephys_jax.models.pooling import adaptive_avg_pool_matrix
from codephys_jax.models import codephys as codephys_lib

B, T, S = 2, 16, 16
TINY_AE = dict(hidden=32, code_dim=16, num_codes=16)
TINY_BB = dict(base_width=4, output_channels=8, spatial_out=2)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def clip():
  return jax.random.normal(jax.random.key(0), (B, T, S, S, 3))


@pytest.fixture(scope="module")
def ppg():
  t = np.arange(T) / 30.0
  return jnp.asarray(np.sin(2 * np.pi * 1.3 * t)[None] * np.array([[1.0], [0.5]]), jnp.float32)


@pytest.mark.parametrize("update", ["loss", "ema"])
def test_ppg_autoencoder_param_count_default(update):
  h, d, k, r, ks, dk = 512, 64, 64, 2, 3, 5
  block = ks * h * h + h + 2 * h  # conv kernel + bias + LayerNorm scale/bias
  encoder = (1 * h + h) + r * block + (dk * h * d + d)
  decoder = (ks * d * h + h) + r * block + (dk * h * h + h) + (h * 1 + 1)
  codebook = k * d if update == "loss" else 0
  shapes = jax.eval_shape(
      lambda: PPGAutoencoder(update=update).init(
          jax.random.key(0), jnp.zeros((1, 160)), train=False
      )
  )
  assert _count(shapes["params"]) == encoder + decoder + codebook
  vq_state = shapes.get("vq_state", {})
  assert _count(vq_state) == (0 if update == "loss" else 2 * k * d + k)


def test_ppg_autoencoder_shapes_and_methods(ppg):
  ae = PPGAutoencoder(**TINY_AE, teacher_dim=8)
  v = ae.init(jax.random.key(1), ppg, train=True)
  out, _ = ae.apply(v, ppg, train=True, mutable=["vq_state"])
  assert out["recon"].shape == (B, T)
  assert out["z_e"].shape == out["z_q"].shape == (B, T // 4, 16)
  assert out["indices"].shape == (B, T // 4)
  out = ae.apply(v, ppg, train=False)
  z_e = ae.apply(v, ppg, method=PPGAutoencoder.encode)
  vq = ae.apply(v, z_e, method=PPGAutoencoder.quantize)
  recon = ae.apply(v, vq.quantized, method=PPGAutoencoder.decode)
  np.testing.assert_allclose(np.asarray(recon), np.asarray(out["recon"]), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(vq.indices), np.asarray(out["indices"]))
  assert ae.apply(v, ppg, method=PPGAutoencoder.teacher_features).shape == (B, T, 8)
  assert PPGAutoencoder(**TINY_AE).apply(
      {k: v[k] for k in v}, ppg, method=PPGAutoencoder.teacher_features
  ).shape == (B, T, 32)
  with pytest.raises(ValueError, match="multiple of downsample"):
    ae.apply(v, ppg[:, : T - 2], train=False)


def test_adaptive_pool_matrix_matches_torch_rule():
  # PyTorch AdaptiveAvgPool bins: [floor(i*n/m), ceil((i+1)*n/m)).
  m = adaptive_avg_pool_matrix(10, 4)
  x = np.arange(10.0)
  ref = [x[0:3].mean(), x[2:5].mean(), x[5:8].mean(), x[7:10].mean()]
  np.testing.assert_allclose(m @ x, ref)
  np.testing.assert_allclose(adaptive_avg_pool_matrix(8, 4) @ np.arange(8.0), [0.5, 2.5, 4.5, 6.5])


def test_physnet_backbone_shapes_and_batchnorm(clip):
  bb = get_backbone("physnet", **TINY_BB)
  assert isinstance(bb, PhysNetBackbone)
  v = bb.init(jax.random.key(2), clip, train=False)
  feats = bb.apply(v, clip, train=False)
  assert feats.shape == (B, T, 2, 2, 8)
  _, mut = bb.apply(v, clip, train=True, mutable=["batch_stats"])
  before, after = jax.tree.leaves(v["batch_stats"]), jax.tree.leaves(mut["batch_stats"])
  assert any(float(jnp.abs(a - b).max()) > 1e-4 for a, b in zip(before, after))
  with pytest.raises(ValueError, match="multiple of 4"):
    bb.apply(v, clip[:, : T - 2], train=False)
  with pytest.raises(ValueError, match="Unknown backbone"):
    get_backbone("resnet", **TINY_BB)


TINY_CELL = dict(grid=4, width=8, output_channels=8, spatial_out=2, num_blocks=2, temporal_kernel=3)


@pytest.mark.parametrize("colour_norm", ["batch", "instance"])
def test_cell_tcn_backbone_shapes_batchnorm_and_errors(clip, colour_norm):
  bb = get_backbone("cell_tcn", colour_norm=colour_norm, **TINY_CELL)
  assert isinstance(bb, CellTCNBackbone)
  v = bb.init(jax.random.key(2), clip, train=False)
  assert bb.apply(v, clip, train=False).shape == (B, T, 2, 2, 8)
  _, mut = bb.apply(v, clip, train=True, mutable=["batch_stats"])
  before, after = jax.tree.leaves(v["batch_stats"]), jax.tree.leaves(mut["batch_stats"])
  assert any(float(jnp.abs(a - b).max()) > 1e-4 for a, b in zip(before, after))
  with pytest.raises(ValueError, match="fewer pixels than grid"):
    bb.apply(v, clip[:, :, :3, :3], train=False)
  with pytest.raises(ValueError, match="colour_norm"):
    get_backbone("cell_tcn", colour_norm="layer", **TINY_CELL).init(
        jax.random.key(2), clip, train=False
    )


def test_cell_tcn_mixes_only_within_its_receptive_field_and_its_own_clip():
  # The time and cell convs run on reshaped views; a wrong transpose would leak a
  # change across clips of the batch or beyond the temporal receptive field.
  t_len = 48
  x = jax.random.normal(jax.random.key(5), (2, t_len, 8, 8, 3))
  bb = get_backbone("cell_tcn", **TINY_CELL)
  v = bb.init(jax.random.key(6), x, train=False)
  t0 = 24
  bumped = x.at[0, t0].add(3.0)
  diff = jnp.abs(bb.apply(v, bumped, train=False) - bb.apply(v, x, train=False))
  reach = (TINY_CELL["temporal_kernel"] - 1) // 2 * sum(2**i for i in range(2))  # 1 + 2 = 3
  changed = np.flatnonzero(np.asarray(diff[0].max(axis=(1, 2, 3))) > 1e-6)
  assert changed.min() == t0 - reach and changed.max() == t0 + reach
  assert float(diff[1].max()) == 0.0


def test_cell_tcn_instance_colour_norm_ignores_the_clip_amplitude(clip):
  # Per-clip alpha tuning: a subject whose pulse (and noise) is twice as strong in
  # the input gives the same features; with a running BatchNorm it does not.
  change = {}
  for colour_norm in ("instance", "batch"):
    bb = get_backbone("cell_tcn", colour_norm=colour_norm, **TINY_CELL)
    v = bb.init(jax.random.key(7), clip, train=False)
    a, b = bb.apply(v, clip, train=False), bb.apply(v, 2.0 * clip, train=False)
    change[colour_norm] = float(jnp.abs(a - b).max() / jnp.abs(a).max())
  assert change["instance"] < 1e-3 and change["batch"] > 0.1, change


def test_cell_tcn_remove_luminance_ignores_a_light_change_and_keeps_colour(clip):
  # A change of light intensity is the same relative change in R, G and B: with
  # remove_luminance the features do not move at all; a colour change still does.
  t = jnp.arange(clip.shape[1], dtype=jnp.float32)
  light = (0.5 * jnp.sin(t / 2.0))[None, :, None, None, None]
  colour = light * jnp.asarray([1.0, -1.0, 0.0])
  change = {}
  for remove in (True, False):
    bb = get_backbone("cell_tcn", colour_norm="instance", remove_luminance=remove, **TINY_CELL)
    v = bb.init(jax.random.key(8), clip, train=False)
    a = bb.apply(v, clip, train=False)
    for name, delta in (("light", light), ("colour", colour)):
      b = bb.apply(v, clip + delta, train=False)
      change[remove, name] = float(jnp.abs(a - b).max() / jnp.abs(a).max())
  assert change[True, "light"] < 1e-4, change
  assert change[False, "light"] > 0.05 and change[True, "colour"] > 0.05, change


def test_physnet_regression_baseline(clip):
  model = get_model("physnet_regression", backbone_kwargs=TINY_BB)
  assert isinstance(model, PhysNetRegression)
  v = model.init(jax.random.key(3), clip, train=False)
  out = model.apply(v, clip, train=False)
  assert out["rppg"].shape == (B, T)
  assert set(v) == {"params", "batch_stats"}


def _codephys(mode, **kw):
  return CodePhys(
      backbone_kwargs=TINY_BB,
      query_mode=mode,
      **TINY_AE,
      transformer_dim=16,
      transformer_heads=2,
      transformer_depth=1,
      **kw,
  )


@pytest.fixture(scope="module")
def stage1(ppg):
  ae = PPGAutoencoder(**TINY_AE)
  return ae, ae.init(jax.random.key(5), ppg, train=False)


@pytest.mark.parametrize("mode", ["nearest", "soft", "transformer"])
def test_codephys_modes_and_stage1_loading(mode, clip, ppg, stage1):
  ae, ae_vars = stage1
  model = _codephys(mode, temperature=0.5)
  v = model.init(jax.random.key(4), clip, train=False)
  params = {**v["params"], **stage1_subtrees(ae_vars)}
  v = {**v, "params": params}
  out, mut = model.apply(v, clip, train=True, mutable=["batch_stats"])
  assert out["rppg"].shape == (B, T)
  assert out["features"].shape == (B, T, 2, 2, 8)
  assert out["attention"].shape == (B, 2, 2)
  assert float(out["attention"].min()) > 0 and float(out["attention"].max()) < 1
  assert out["queries"].shape == out["quantized"].shape == (B, T // 4, 16)
  assert out["indices"].shape == (B, T // 4)
  # Every mode has code logits (distance-based outside 'transformer'), for the code CE.
  assert out["code_logits"].shape == (B, T // 4, 16)
  # The Stage I decoder in CodePhys equals the Stage I model's decoder on the same codes.
  ref = ae.apply(ae_vars, out["quantized"], method=PPGAutoencoder.decode)
  np.testing.assert_allclose(np.asarray(out["rppg"]), np.asarray(ref), rtol=1e-4, atol=1e-5)
  cb = np.asarray(ae_vars["vq_state"]["quantizer"]["codebook"])
  q, quant = np.asarray(out["queries"]), np.asarray(out["quantized"])
  d = ((q[..., None, :] - cb) ** 2).sum(-1)
  if mode == "nearest":
    np.testing.assert_array_equal(np.asarray(out["indices"]), d.argmin(-1))
    np.testing.assert_allclose(quant, cb[d.argmin(-1)], atol=1e-5)
  elif mode == "soft":
    w = np.exp(-d / 0.5 - (-d / 0.5).max(-1, keepdims=True))
    np.testing.assert_allclose(quant, (w / w.sum(-1, keepdims=True)) @ cb, rtol=1e-4, atol=1e-5)
  else:
    logits = np.asarray(out["code_logits"])
    assert logits.shape == (B, T // 4, 16)
    np.testing.assert_allclose(quant, cb[logits.argmax(-1)], atol=1e-5)
  if mode != "transformer":
    # Distance logits: argmax = nearest code; scale-free (a codebook and queries
    # scaled together give the same logits).
    logits = np.asarray(out["code_logits"])
    np.testing.assert_array_equal(logits.argmax(-1), d.argmin(-1))
    spacing = float(codephys_lib.code_spacing(jnp.asarray(cb)))
    np.testing.assert_allclose(logits, -d / (spacing * 0.5), rtol=1e-4, atol=1e-4)
    # Soft-query warm-up: soft_mix=1 decodes the softmax mixture of the codes.
    full, _ = model.apply(v, clip, train=True, mutable=["batch_stats"], soft_mix=1.0)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(full["quantized"]), (w / w.sum(-1, keepdims=True)) @ cb, rtol=1e-4, atol=1e-4
    )
  # Ground-truth targets come from the loaded Stage I encoder and codebook.
  tg = model.apply(v, ppg, method=CodePhys.targets)
  np.testing.assert_array_equal(
      np.asarray(tg["target_indices"]), np.asarray(ae.apply(ae_vars, ppg, train=False)["indices"])
  )
  assert tg["teacher"].shape == (B, T, 8)


def _grads(model, v, clip, ppg):
  def loss(params):
    out, _ = model.apply({**v, "params": params}, clip, train=True, mutable=["batch_stats"])
    tg = model.apply({**v, "params": params}, ppg, method=CodePhys.targets)
    extra = jnp.mean(out["code_logits"]) if out["code_logits"] is not None else 0.0
    return jnp.mean(out["rppg"] ** 2) + jnp.mean(tg["teacher"] ** 2) + extra

  return jax.jit(jax.grad(loss))(v["params"])


def _norm(tree):
  return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_codephys_gradients_reach_backbone_not_frozen_stage1(clip, ppg):
  model = _codephys("transformer")
  v = model.init(jax.random.key(6), clip, train=False)
  g = _grads(model, v, clip, ppg)
  assert _norm(g["video_backbone"]) > 0
  assert _norm(g["query_proj"]) > 0
  assert _norm(g["teacher_proj"]) > 0
  assert _norm(g["code_head"]) > 0
  for name in ("stage1_codebook", "stage1_decoder", "stage1_encoder"):
    assert _norm(g[name]) == 0.0, name
  labels = param_labels(v["params"], frozen=model.frozen_subtrees())
  assert set(jax.tree.leaves(labels["stage1_decoder"])) == {"frozen"}
  assert set(jax.tree.leaves(labels["video_backbone"])) == {"trainable"}


def test_frozen_subtrees_are_the_stage1_parts_and_the_teacher_projection():
  assert (
      _codephys("nearest").frozen_subtrees()
      == FROZEN
      == ("stage1_encoder", "stage1_codebook", "stage1_decoder", "teacher_proj")
  )
  # An unfrozen teacher trunk leaves the projection frozen (today's training behaviour).
  assert _codephys("nearest", freeze_teacher=False).frozen_subtrees() == (
      "stage1_codebook",
      "stage1_decoder",
      "teacher_proj",
  )


def test_codephys_unfrozen_stage1_gets_gradients(clip, ppg):
  model = _codephys("soft", freeze_stage1=False, freeze_teacher=False)
  v = model.init(jax.random.key(6), clip, train=False)
  g = _grads(model, v, clip, ppg)
  for name in ("stage1_codebook", "stage1_decoder", "stage1_encoder"):
    assert _norm(g[name]) > 0, name


def test_codephys_batchnorm_updates_only_in_train(clip):
  model = _codephys("nearest")
  v = model.init(jax.random.key(7), clip, train=False)
  _, mut_eval = model.apply(v, clip, train=False, mutable=["batch_stats"])
  _, mut_train = model.apply(v, clip, train=True, mutable=["batch_stats"])
  for a, b in zip(jax.tree.leaves(v["batch_stats"]), jax.tree.leaves(mut_eval["batch_stats"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  diff = [
      float(jnp.abs(a - b).max())
      for a, b in zip(jax.tree.leaves(v["batch_stats"]), jax.tree.leaves(mut_train["batch_stats"]))
  ]
  assert max(diff) > 1e-4


def test_registry_and_config_errors(clip):
  assert isinstance(get_model("codephys", query_mode="soft"), CodePhys)
  with pytest.raises(ValueError, match="Unknown model"):
    get_model("nope")
  with pytest.raises(ValueError, match="query_mode"):
    _codephys("bogus").init(jax.random.key(0), clip, train=False)
  with pytest.raises(ValueError, match="no codebook"):
    stage1_subtrees({"encoder": {}, "decoder": {}, "quantizer": {}})
