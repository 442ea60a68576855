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
    np.testing.assert_allclose(float(losses.soft_distillation(student, teacher, att)), expected, rtol=1e-6)
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
        [np.abs((xw * np.exp(-2j * np.pi * (b / 60.0) * n / fs)).sum(-1)) ** 2 for b in range(40, 180)], -1
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
    # Independent reference of CE on the true bin: log-softmax of the sum-normalised spectrum.
    spec = np.asarray(losses.power_spectrum_bpm(ppg, fs), np.float64)
    logits = spec / spec.sum(-1, keepdims=True)
    ce_ref = -np.mean(special.log_softmax(logits, -1)[np.arange(2), (bpms - 40).astype(int)])
    np.testing.assert_allclose(float(ce_true), ce_ref, rtol=1e-5)
    # Out-of-grid heart rates stay finite (label is clipped onto the grid).
    ce_far, kl_far = losses.frequency_ce_loss(ppg, jnp.array([0.0, 400.0]), fs)
    assert np.isfinite(float(ce_far)) and np.isfinite(float(kl_far))


def test_frequency_loss_is_jittable_and_differentiable():
    fs = 30.0
    pred = jnp.asarray(RNG.normal(size=(2, 64)), jnp.float32)
    g = jax.jit(jax.grad(lambda p: sum(losses.frequency_ce_loss(p, jnp.array([70.0, 90.0]), fs))))(pred)
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0
