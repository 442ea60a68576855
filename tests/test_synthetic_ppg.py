"""Tests for the synthetic PPG generator."""

import numpy as np
import pytest
import scipy.signal

from codephys_jax import synthetic_ppg

FS = 30.0


def _dominant_bpm(x, fs):
  # Zero-padded periodogram (resolution ~0.05 bpm) so the check is about the signal, not the grid.
  freqs, power = scipy.signal.periodogram(x - x.mean(), fs=fs, nfft=1 << 15)
  band = (freqs >= 0.6) & (freqs <= 3.0)
  return 60.0 * freqs[band][np.argmax(power[band])]


@pytest.mark.parametrize("mean_hr", [45.0, 62.0, 88.0, 120.0, 150.0])
def test_dominant_frequency_matches_mean_hr(mean_hr):
  sample = synthetic_ppg.synth_ppg(1800, FS, mean_hr_bpm=mean_hr, rng=int(mean_hr))
  assert sample.ppg.dtype == np.float32 and sample.ppg.shape == (1800,)
  assert abs(_dominant_bpm(sample.ppg, FS) - mean_hr) < 1.0
  assert abs(sample.mean_hr - mean_hr) < 1.0
  # mean_hr is measured from the beat times, independently of the requested rate.
  np.testing.assert_allclose(sample.mean_hr, 60.0 / np.mean(np.diff(sample.beat_times)))
  expected_beats = 1800 / FS * mean_hr / 60.0
  assert abs(sample.beat_times.size - expected_beats) <= 1.0


def test_deterministic_per_seed_and_seeds_differ():
  a = synthetic_ppg.synth_ppg(600, FS, mean_hr_bpm=70.0, rng=3)
  b = synthetic_ppg.synth_ppg(600, FS, mean_hr_bpm=70.0, rng=np.random.default_rng(3))
  c = synthetic_ppg.synth_ppg(600, FS, mean_hr_bpm=70.0, rng=4)
  np.testing.assert_array_equal(a.ppg, b.ppg)
  np.testing.assert_array_equal(a.beat_times, b.beat_times)
  assert a.morphology == b.morphology
  assert np.abs(a.ppg - c.ppg).max() > 0.1
  assert a.morphology != c.morphology


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rr_s", [1.2, 0.8, 0.45])
def test_beat_template_has_dicrotic_notch(seed, rr_s):
  morph = synthetic_ppg.sample_morphology(seed)
  phase = np.arange(2000) / 2000.0
  beat = synthetic_ppg.beat_template(phase, morph, rr_s=rr_s)
  # Periodic extension so a peak at the wrap-around is seen too.
  peaks, _ = scipy.signal.find_peaks(np.concatenate([beat, beat[:10]]))
  assert len(peaks) == 2, peaks
  sys_peak, dia_peak = peaks
  notch = sys_peak + np.argmin(beat[sys_peak:dia_peak])
  assert beat[sys_peak] > beat[dia_peak] > beat[notch]
  # Systolic upstroke is steeper than the decay (the split-Gaussian skew).
  slope = np.diff(beat)
  assert slope.max() > 1.2 * (-slope[sys_peak:notch]).max()


def test_heart_rate_variability():
  fixed = synthetic_ppg.synth_ppg(1800, FS, mean_hr_bpm=70.0, rng=0, hrv_std_bpm=0.0)
  varied = synthetic_ppg.synth_ppg(1800, FS, mean_hr_bpm=70.0, rng=0, hrv_std_bpm=3.0)
  np.testing.assert_allclose(fixed.instantaneous_hr, 70.0, rtol=1e-6)
  np.testing.assert_allclose(np.diff(fixed.beat_times), 60.0 / 70.0, rtol=1e-6)
  assert varied.instantaneous_hr.std() == pytest.approx(3.0, rel=1e-3)
  assert varied.instantaneous_hr.mean() == pytest.approx(70.0, abs=1e-3)
  rr = np.diff(varied.beat_times)
  assert rr.std() > 0.01  # seconds; ~3 bpm at 70 bpm is ~0.036 s
  # The rate varies smoothly: no jump of more than 1 bpm between consecutive samples.
  assert np.abs(np.diff(varied.instantaneous_hr)).max() < 1.0


def test_respiratory_amplitude_modulation():
  sample = synthetic_ppg.synth_ppg(
      1800,
      FS,
      mean_hr_bpm=72.0,
      rng=1,
      hrv_std_bpm=0.0,
      resp_am=0.3,
      resp_bm=0.0,
      drift_std=0.0,
      resp_rate_hz=0.2,
  )
  peaks, _ = scipy.signal.find_peaks(sample.ppg, distance=int(FS * 0.5))
  heights = sample.ppg[peaks]
  # Beat heights swing by about +-30% with breathing.
  assert heights.max() / heights.min() > 1.6


def test_noise_and_rgb_trace():
  clean = synthetic_ppg.synth_ppg(900, FS, mean_hr_bpm=80.0, rng=2)
  noisy = synthetic_ppg.synth_ppg(900, FS, mean_hr_bpm=80.0, rng=2, noise_std=0.2)
  assert np.std(noisy.ppg - clean.ppg) == pytest.approx(0.2, rel=0.1)
  rgb = synthetic_ppg.synth_rgb_trace(
      clean.ppg, FS, rng=5, noise_std=0.0, illum_drift=0.0, illum_wave=0.0
  )
  assert rgb.shape == (900, 3)
  # Without illumination changes the normalised AC amplitudes are the PBV signature.
  rel = rgb / rgb.mean(axis=0) - 1.0
  np.testing.assert_allclose(
      rel.std(axis=0), 0.01 * np.asarray(synthetic_ppg.DEFAULT_PBV), rtol=1e-3
  )
  np.testing.assert_allclose(
      rgb.mean(axis=0), 200.0 * np.asarray(synthetic_ppg.DEFAULT_SKIN_RGB), rtol=1e-3
  )


def test_invalid_arguments():
  with pytest.raises(ValueError, match="mean_hr_bpm"):
    synthetic_ppg.synth_ppg(100, FS, mean_hr_bpm=5.0, rng=0)
  with pytest.raises(ValueError, match="rng"):
    synthetic_ppg.synth_ppg(100, FS, mean_hr_bpm=60.0, rng="seed")
