"""Losses against NumPy / SciPy references and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from codephys_jax import losses

RNG = np.random.default_rng(0)


def test_neg_pearson_closed_forms_and_numpy():
  x = RNG.normal(size=(3, 50)).astype(np.float32)
  y = RNG.normal(size=(3, 50)).astype(np.float32)
  np.testing.assert_allclose(float(losses.neg_pearson(x, x)), 0.0, atol=1e-6)
  np.testing.assert_allclose(float(losses.neg_pearson(x, -x)), 2.0, atol=1e-6)
  np.testing.assert_allclose(float(losses.neg_pearson(x, 3 * x + 7)), 0.0, atol=1e-5)
  ref = np.mean([1 - np.corrcoef(a, b)[0, 1] for a, b in zip(x, y)])
  np.testing.assert_allclose(float(losses.neg_pearson(x, y)), ref, rtol=1e-5)


def test_mse_and_smooth_l1_match_references():
  x = RNG.normal(size=(4, 30)) * 2
  y = RNG.normal(size=(4, 30))
  np.testing.assert_allclose(float(losses.mse(x, y)), np.mean((x - y) ** 2), rtol=1e-5)
  for beta in (1.0, 0.5):
    # scipy.special.huber(delta, r) / delta is SmoothL1 with beta = delta.
    ref = np.mean(special.huber(beta, x - y) / beta)
    np.testing.assert_allclose(float(losses.smooth_l1(x, y, beta=beta)), ref, rtol=1e-5)


def test_soft_distillation_zero_for_matching_teacher():
  teacher = jnp.asarray(RNG.normal(size=(2, 6, 5)), jnp.float32)
  student = jnp.broadcast_to(teacher[:, :, None, None, :], (2, 6, 3, 3, 5))
  att = jnp.asarray(RNG.uniform(size=(2, 3, 3)), jnp.float32)
  assert float(losses.soft_distillation(student, teacher, att)) == 0.0


def test_soft_distillation_hand_case():
  # B=1, T=2, H=1, W=2, C=1. Cell 0 differs by (0.5, 0.5) -> SmoothL1 0.125 each -> mean 0.125.
  # Cell 1 differs by (2, 0) -> (1.5 + 0) / 2 = 0.75. Weights w + 0.5 = (0.5, 1.5).
  teacher = jnp.zeros((1, 2, 1))
  student = jnp.array([[[[[0.5], [2.0]]], [[[0.5], [0.0]]]]])
  att = jnp.array([[[0.0, 1.0]]])
  expected = (0.5 * 0.125 + 1.5 * 0.75) / 2
  np.testing.assert_allclose(
      float(losses.soft_distillation(student, teacher, att)), expected, rtol=1e-6
  )
  g = jax.grad(lambda a: losses.soft_distillation(student, teacher, a, detach_attention=True))(att)
  np.testing.assert_array_equal(np.asarray(g), 0.0)
  g = jax.grad(lambda a: losses.soft_distillation(student, teacher, a))(att)
  np.testing.assert_allclose(np.asarray(g), [[[0.125 / 2, 0.75 / 2]]], rtol=1e-6)
  with pytest.raises(ValueError, match="soft_distillation"):
    losses.soft_distillation(student[0], teacher, att)


def test_feature_loss_and_code_cross_entropy():
  q = RNG.normal(size=(2, 4, 3)).astype(np.float32)
  t = RNG.normal(size=(2, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(float(losses.feature_loss(q, t)), np.mean((q - t) ** 2), rtol=1e-6)
  g = jax.grad(lambda tt: losses.feature_loss(jnp.asarray(q), tt))(jnp.asarray(t))
  np.testing.assert_array_equal(np.asarray(g), 0.0)
  logits = RNG.normal(size=(2, 4, 7)).astype(np.float32)
  idx = RNG.integers(0, 7, size=(2, 4))
  ref = -np.mean(np.take_along_axis(special.log_softmax(logits, -1), idx[..., None], -1))
  np.testing.assert_allclose(float(losses.code_cross_entropy(logits, idx)), ref, rtol=1e-5)


def test_power_spectrum_matches_direct_dft():
  fs, t_len = 30.0, 90
  x = RNG.normal(size=(2, t_len))
  spec = np.asarray(losses.power_spectrum_bpm(jnp.asarray(x, jnp.float32), fs))
  n = np.arange(t_len)
  xw = (x - x.mean(-1, keepdims=True)) * np.hanning(t_len)
  ref = np.stack(
      [
          np.abs((xw * np.exp(-2j * np.pi * (b / 60.0) * n / fs)).sum(-1)) ** 2
          for b in range(40, 180)
      ],
      -1,
  )
  assert spec.shape == (2, 140)
  np.testing.assert_allclose(spec, ref, rtol=1e-3, atol=1e-3)


def test_frequency_losses_pick_the_true_heart_rate():
  fs, t_len = 30.0, 300
  t = np.arange(t_len) / fs
  bpms = np.array([72.0, 117.0])
  ppg = jnp.asarray(np.sin(2 * np.pi * bpms[:, None] / 60.0 * t + 0.3), jnp.float32)
  np.testing.assert_array_equal(np.asarray(losses.hr_from_ppg_jax(ppg, fs)), bpms)
  ce_true, kl_true = losses.frequency_ce_loss(ppg, jnp.asarray(bpms), fs)
  for offset in (-15.0, 20.0):
    ce_wrong, kl_wrong = losses.frequency_ce_loss(ppg, jnp.asarray(bpms + offset), fs)
    assert float(ce_true) < float(ce_wrong)
    assert float(kl_true) < float(kl_wrong)
  # Independent reference of CE on the true bin: -log of the fraction of in-grid
  # power in that bin (logits = log power), far below the uniform log(140).
  spec = np.asarray(losses.power_spectrum_bpm(ppg, fs), np.float64)
  p = spec / spec.sum(-1, keepdims=True) + 1e-6
  ce_ref = -np.mean(np.log(p / p.sum(-1, keepdims=True))[np.arange(2), (bpms - 40).astype(int)])
  np.testing.assert_allclose(float(ce_true), ce_ref, rtol=1e-4)
  assert float(ce_true) < np.log(140) - 1.0
  # The label is what the clip resolves: a pure tone at the label's rate has KL ~ 0.
  assert float(kl_true) < 0.05
  # Out-of-grid heart rates stay finite (label is clipped onto the grid).
  ce_far, kl_far = losses.frequency_ce_loss(ppg, jnp.array([0.0, 400.0]), fs)
  assert np.isfinite(float(ce_far)) and np.isfinite(float(kl_far))


def test_frequency_loss_is_jittable_and_differentiable():
  fs = 30.0
  pred = jnp.asarray(RNG.normal(size=(2, 64)), jnp.float32)
  g = jax.jit(jax.grad(lambda p: sum(losses.frequency_ce_loss(p, jnp.array([70.0, 90.0]), fs))))(
      pred
  )
  assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0


# ---------------------------------------------------------------- every loss term learns
# For each term: the gradient with respect to the model output is finite and
# nonzero, and plain gradient descent on that output lowers the term.


def _descend(loss_fn, x0, *, steps=60, lr=0.1):
  x = jnp.asarray(x0, jnp.float32)
  grad = jax.jit(jax.value_and_grad(loss_fn))
  first, g = grad(x)
  assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0
  for _ in range(steps):
    _, g = grad(x)
    # Adam-free normalised steps: the test is about direction, not scale.
    x = x - lr * g / (jnp.linalg.norm(g) + 1e-12)
  return float(first), float(loss_fn(x))


FS = 30.0
T64 = np.arange(64) / FS
PULSE = np.stack([np.sin(2 * np.pi * 1.2 * T64), np.sin(2 * np.pi * 1.9 * T64 + 1.0)]).astype(
    np.float32
)
NOISE = RNG.normal(size=PULSE.shape).astype(np.float32)


@pytest.mark.parametrize(
    "name", ["neg_pearson", "mse", "smooth_l1", "feature", "freq_ce", "freq_kl"]
)
def test_waveform_terms_have_gradients_and_decrease(name):
  target = jnp.asarray(PULSE)
  hr = jnp.array([72.0, 114.0])
  fns = {
      "neg_pearson": lambda x: losses.neg_pearson(x, target),
      "mse": lambda x: losses.mse(x, target),
      "smooth_l1": lambda x: losses.smooth_l1(x, target),
      "feature": lambda x: losses.feature_loss(x, target),
      "freq_ce": lambda x: losses.frequency_ce_loss(x, hr, FS)[0],
      "freq_kl": lambda x: losses.frequency_ce_loss(x, hr, FS)[1],
  }
  first, last = _descend(fns[name], NOISE, steps=80, lr=0.2)
  # 20%: the frequency CE has a floor above 0 (leakage of a 64-sample window).
  assert last < 0.8 * first, (name, first, last)


def test_frequency_ce_moves_the_spectral_peak_to_the_label():
  # From noise, descending the frequency CE alone puts the FFT peak at the label.
  hr = jnp.array([72.0, 114.0])
  x = jnp.asarray(NOISE)
  grad = jax.jit(jax.grad(lambda v: sum(losses.frequency_ce_loss(v, hr, FS))))
  for _ in range(150):
    g = grad(x)
    x = x - 0.2 * g / (jnp.linalg.norm(g) + 1e-12)
  np.testing.assert_allclose(np.asarray(losses.hr_from_ppg_jax(x, FS)), np.asarray(hr), atol=6.0)


def test_constant_output_gives_finite_frequency_gradients():
  g = jax.grad(lambda v: sum(losses.frequency_ce_loss(v, jnp.array([80.0]), FS)))(jnp.ones((1, 64)))
  assert np.all(np.isfinite(np.asarray(g)))


def test_soft_distillation_decreases_for_student_features():
  teacher = jnp.asarray(RNG.normal(size=(2, 8, 4)), jnp.float32)
  att = jnp.asarray(RNG.uniform(size=(2, 3, 3)), jnp.float32)
  student0 = RNG.normal(size=(2, 8, 3, 3, 4)).astype(np.float32)
  first, last = _descend(
      lambda s: losses.soft_distillation(s, teacher, att, detach_attention=True),
      student0,
      steps=80,
      lr=0.3,
  )
  assert last < 0.5 * first


def test_code_cross_entropy_and_usage_entropy_decrease():
  idx = jnp.asarray(RNG.integers(0, 8, size=(2, 5)))
  logits0 = np.zeros((2, 5, 8), np.float32)
  logits0[..., 0] = 6.0  # collapsed onto code 0
  first, last = _descend(lambda z: losses.code_cross_entropy(z, idx), logits0, steps=60, lr=0.5)
  assert last < 0.5 * first
  # Usage entropy of a collapsed batch is ~0 and rises (loss = -entropy falls) towards log K.
  first, last = _descend(lambda z: -losses.code_usage_entropy(z), logits0, steps=60, lr=0.5)
  assert -first < 0.5 and -last > np.log(8) - 0.1


def test_resolvable_label_width_follows_clip_length():
  def width(t_len):  # bins holding half the mass around the peak
    lab = np.asarray(losses.resolvable_label(jnp.array([90.0]), t_len, FS))[0]
    return int(np.sum(lab > lab.max() / 2))

  assert width(64) > 2 * width(160) > 2
  lab = np.asarray(losses.resolvable_label(jnp.array([90.0]), 64, FS))[0]
  assert abs(int(np.argmax(lab)) + 40 - 90) <= 1 and abs(lab.sum() - 1) < 1e-5
