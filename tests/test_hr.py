"""Tests for codephys_jax.hr on sinusoids, realistic pulses and hard cases."""

import numpy as np
import pytest
import scipy.signal

from codephys_jax import hr
from codephys_jax import signal as sig

FS = 30.0


def _t(seconds):
  return np.arange(int(seconds * FS)) / FS


def _pulse(t, bpm, a2=0.5, a3=0.2):
  """Systolic peak plus a dicrotic notch: fundamental and two phase-shifted harmonics."""
  ph = 2 * np.pi * bpm / 60.0 * t
  return np.sin(ph) + a2 * np.sin(2 * ph + 0.8) + a3 * np.sin(3 * ph + 1.6)


@pytest.mark.parametrize("method", sorted(hr.ESTIMATORS))
@pytest.mark.parametrize("bpm", [48.0, 63.0, 75.0, 96.0, 121.0, 144.0])
def test_estimators_on_sinusoids(method, bpm):
  x = sig.postprocess(np.sin(2 * np.pi * bpm / 60.0 * _t(30)), FS)
  # fft bins are 30*60/1024 = 1.76 bpm wide; hann_dft is on a 1-bpm grid.
  assert abs(hr.estimate_hr(x, FS, method=method) - bpm) < 1.0


@pytest.mark.parametrize("method", sorted(hr.ESTIMATORS))
@pytest.mark.parametrize("bpm", [66.0, 72.0, 90.0, 110.0])
def test_estimators_on_pulse_shape(method, bpm):
  x = sig.postprocess(_pulse(_t(60), bpm), FS)
  assert abs(hr.estimate_hr(x, FS, method=method) - bpm) < 1.0


def test_fft_is_periodogram_argmax_in_band():
  x = np.random.default_rng(0).standard_normal(300)
  f, p = scipy.signal.periodogram(x, fs=FS, nfft=512, detrend=False)
  m = (f >= 0.75) & (f <= 2.5)
  assert hr.hr_fft(x, FS) == pytest.approx(f[m][np.argmax(p[m])] * 60)


def test_band_edges_restrict_fft():
  x = sig.bandpass(
      np.sin(2 * np.pi * 3.0 * _t(30)) + 0.3 * np.sin(2 * np.pi * 1.5 * _t(30)),
      FS,
      low_hz=0.5,
      high_hz=5.0,
  )
  assert abs(hr.hr_fft(x, FS, high_hz=4.0) - 180.0) < 2.0
  assert abs(hr.hr_fft(x, FS) - 90.0) < 2.0


def test_hann_dft_grid_and_spectrum():
  x = np.sin(2 * np.pi * (87.3 / 60.0) * _t(10))
  bpm, power = hr.hann_dft_spectrum(x, FS)
  np.testing.assert_array_equal(bpm, np.arange(40, 180))
  # Independent reference: windowed DFT sum at one frequency.
  w = np.hanning(x.size + 1)[:-1]
  k = 47
  ref = (
      abs(np.sum((x - x.mean()) * w * np.exp(-2j * np.pi * bpm[k] / 60.0 * np.arange(x.size) / FS)))
      ** 2
  )
  assert power[k] == pytest.approx(ref, rel=1e-9)
  assert hr.hr_hann_dft(x, FS) == 87.0


def test_peak_needs_two_peaks():
  assert np.isnan(hr.hr_peak(np.linspace(0, 1, 20), FS))


def test_unknown_method():
  with pytest.raises(ValueError, match="unknown HR method"):
    hr.estimate_hr(np.ones(10), FS, method="wavelet")


def test_robust_beats_fft_with_motion_bursts():
  t = _t(60)
  rng = np.random.default_rng(0)
  x = _pulse(t, 72.0) + 0.3 * rng.standard_normal(t.size)
  for b0 in (12.0, 37.0):  # two 6-s motion bursts: random walk + 108 bpm sway
    m = (t >= b0) & (t < b0 + 6)
    x[m] += 8 * np.cumsum(rng.standard_normal(m.sum())) / 3 + 6 * np.sin(2 * np.pi * 1.8 * t[m])
  p = sig.postprocess(x, FS)
  plain = hr.hr_fft(p, FS)
  res = hr.robust_hr(p, FS)
  assert abs(plain - 72.0) > 20.0  # the plain periodogram locks onto the bursts
  assert abs(res.hr - 72.0) < 2.0
  # Windows overlapping a burst get a low SQI, clean ones a high SQI.
  burst = np.array(
      [any(s < b + 6 and s + 10 > b for b in (12.0, 37.0)) for s in res.window_start_s]
  )
  assert res.window_sqi[~burst].min() > 0.8
  assert res.window_sqi[burst].max() < 0.7
  assert res.reliable


@pytest.mark.parametrize("bpm,a2", [(55.0, 1.6), (60.0, 2.0), (66.0, 1.6), (72.0, 2.0)])
def test_robust_fixes_strong_second_harmonic_with_drift(bpm, a2):
  t = _t(60)
  rng = np.random.default_rng(0)
  x = (
      _pulse(t, bpm, a2=a2, a3=0.3)
      + 3 * np.sin(2 * np.pi * 0.05 * t)
      + 0.3 * rng.standard_normal(t.size)
  )
  p = sig.postprocess(x, FS)
  assert abs(hr.hr_fft(p, FS) - 2 * bpm) < 2.0  # plain picks the harmonic
  assert abs(hr.estimate_hr(p, FS, method="robust") - bpm) < 2.0


@pytest.mark.parametrize("bpm", [100.0, 120.0, 150.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_robust_does_not_halve_genuine_fast_rates(bpm, seed):
  t = _t(60)
  x = np.sin(2 * np.pi * bpm / 60 * t) + 1.5 * np.random.default_rng(seed).standard_normal(t.size)
  assert abs(hr.robust_hr(sig.postprocess(x, FS), FS).hr - bpm) < 2.0


def test_robust_quality_separates_pulse_from_noise():
  t = _t(30)
  clean = hr.robust_hr(sig.postprocess(_pulse(t, 80.0), FS), FS)
  noise = hr.robust_hr(sig.postprocess(np.random.default_rng(0).standard_normal(t.size), FS), FS)
  assert clean.quality > 0.8 and clean.reliable
  assert noise.quality < 0.35 and not noise.reliable
  assert clean.window_hr.shape == clean.window_sqi.shape == (5,)
  np.testing.assert_allclose(clean.window_hr, 80.0, atol=1.5)


def test_robust_short_signal_single_window():
  res = hr.robust_hr(sig.postprocess(_pulse(_t(6), 90.0), FS), FS)
  assert res.window_hr.shape == (1,)
  assert abs(res.hr - 90.0) < 2.0


def test_half_power_range_steady_and_drifting_pulse():
  """A steady 90 bpm pulse: the range is the FFT peak's bin and its neighbours
  (within 2 bins of 90). A pulse drifting from 100 to 125 bpm over the
  recording: the range covers most of the drift, and hr_fft lies inside it."""
  fs, seconds = 30.0, 64.0
  t = np.arange(int(fs * seconds)) / fs
  bin_bpm = 60.0 * fs / sig.next_pow2(t.size)
  lo, hi = hr.fft_half_power_range(np.sin(2 * np.pi * 1.5 * t), fs)
  assert 90.0 - 2 * bin_bpm <= lo <= hi <= 90.0 + 2 * bin_bpm
  inst_hz = np.linspace(100.0, 125.0, t.size) / 60.0
  drifting = np.sin(2 * np.pi * np.cumsum(inst_hz) / fs)
  lo, hi = hr.fft_half_power_range(drifting, fs)
  assert lo < 105.0 and hi > 120.0
  assert lo <= hr.hr_fft(drifting, fs) <= hi
  with pytest.raises(ValueError, match="fraction"):
    hr.fft_half_power_range(drifting, fs, fraction=0.0)
