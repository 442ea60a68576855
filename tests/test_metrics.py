"""Tests for codephys_jax.metrics against hand-computed NumPy values."""

import math

import numpy as np
import pytest

from codephys_jax import metrics
from codephys_jax import signal as sig


def test_hr_metrics_hand_computed():
  pred = np.array([70.0, 80.0, 95.0, 60.0])
  ref = np.array([72.0, 78.0, 90.0, 66.0])
  e = pred - ref  # [-2, 2, 5, -6]
  m = metrics.hr_metrics(pred, ref)
  assert m["mae"] == pytest.approx(15 / 4)
  assert m["mae_se"] == pytest.approx(np.std(np.abs(e)) / 2)
  assert m["rmse"] == pytest.approx(math.sqrt((4 + 4 + 25 + 36) / 4))
  assert m["rmse_se"] == pytest.approx(math.sqrt(np.std(e**2) / 2))
  rel = np.abs(e) / ref * 100
  assert m["mape"] == pytest.approx(rel.mean())
  assert m["mape_se"] == pytest.approx(rel.std() / 2)
  r = np.corrcoef(pred, ref)[0, 1]
  assert m["pearson"] == pytest.approx(r)
  assert m["pearson_se"] == pytest.approx(math.sqrt((1 - r * r) / 2))
  sd = math.sqrt(np.sum((e - e.mean()) ** 2) / 3)
  assert m["sd"] == pytest.approx(sd)
  assert m["sd_se"] == pytest.approx(sd / math.sqrt(6))
  assert m["num"] == 4 and m["num_nonfinite"] == 0


def test_hr_metrics_small_and_nonfinite():
  one = metrics.hr_metrics([70.0], [72.0])
  assert one["mae"] == 2.0 and one["num"] == 1
  for key in ("mae_se", "pearson", "pearson_se", "sd"):
    assert math.isnan(one[key])
  empty = metrics.hr_metrics([], [])
  assert empty["num"] == 0 and math.isnan(empty["mae"])
  m = metrics.hr_metrics([70.0, float("nan"), 80.0], [71.0, 75.0, 78.0])
  assert m["num"] == 2 and m["num_nonfinite"] == 1 and m["mae"] == 1.5
  with pytest.raises(ValueError):
    metrics.hr_metrics([1.0, 2.0], [1.0])


def test_snr_matches_manual_periodogram():
  import scipy.signal

  fs = 30.0
  t = np.arange(600) / fs
  x = np.sin(2 * np.pi * 1.2 * t) + 0.5 * np.random.default_rng(0).standard_normal(600)
  f, p = scipy.signal.periodogram(x, fs=fs, nfft=1024, detrend=False)
  h = (np.abs(f - 1.2) <= 0.1) | (np.abs(f - 2.4) <= 0.1)
  rest = (f >= 0.75) & (f <= 2.5) & ~h
  expected = 10 * np.log10(p[h].sum() / p[rest].sum())
  assert metrics.snr_db(x, fs, 72.0) == pytest.approx(expected)


def test_snr_clean_higher_than_noisy():
  fs = 30.0
  t = np.arange(900) / fs
  clean = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 2.4 * t)
  noisy = clean + 2.0 * np.random.default_rng(1).standard_normal(t.size)
  s_clean = metrics.snr_db(sig.postprocess(clean, fs), fs, 72.0)
  s_noisy = metrics.snr_db(sig.postprocess(noisy, fs), fs, 72.0)
  assert s_clean > 10.0  # finite-length leakage caps a pure tone near 15 dB
  assert s_noisy < s_clean - 10.0


def test_macc_matches_bruteforce_and_shift():
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal(64), rng.standard_normal(64)
  brute = max(abs(np.corrcoef(a, np.roll(b, k))[0, 1]) for k in range(64))
  assert metrics.macc(a, b) == pytest.approx(brute)
  brute3 = max(abs(np.corrcoef(a, np.roll(b, k))[0, 1]) for k in range(-3, 4))
  assert metrics.macc(a, b, max_lag=3) == pytest.approx(brute3)
  assert metrics.macc(a, np.roll(a, 7)) == pytest.approx(1.0)
  assert metrics.macc(a, -a) == pytest.approx(1.0)
  # Lag 7 is outside max_lag=3, so the shifted copy no longer correlates fully.
  assert metrics.macc(a, np.roll(a, 7), max_lag=3) < 0.6
  assert math.isnan(metrics.macc(np.ones(10), a[:10]))
