"""Synthetic PPG and skin-colour traces with known heart rate, for tests and sanity checks.

The generator integrates an instantaneous heart rate into a beat phase, so the
rate changes smoothly within and between beats, and draws each beat from a
per-subject template of three Gaussian components in beat phase: a skewed
systolic peak (fast upstroke, slower fall), a negative dip that carves the
dicrotic notch, and a diastolic (reflected) wave. On top come heart-rate
variability (LF ~0.1 Hz Mayer waves, HF respiratory sinus arrhythmia, and
smoothed randomness), respiratory amplitude and baseline modulation, a slow
baseline drift and optional white noise.

`synth_rgb_trace` turns a PPG into per-frame mean skin RGB with the usual
multiplicative model C(t) = skin * I(t) * (1 + s * p(t) * pbv) + noise, which is
what the unsupervised rPPG methods are designed for.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

# The systolic phase lasts roughly proportionally to sqrt(RR) (Bazett-like), so
# in beat-phase units the template stretches at high heart rate; cap the stretch
# so the diastolic wave stays inside the beat at 150+ bpm.
_REFERENCE_RR_S = 1.0
_MAX_PHASE_STRETCH = 1.6


@dataclasses.dataclass(frozen=True)
class MorphologyParams:
  """Beat template in beat-phase units (0..1) at the reference RR of 1 s."""

  sys_pos: float = 0.16
  sys_width_rise: float = 0.045
  sys_width_fall: float = 0.09
  notch_pos: float = 0.34
  notch_depth: float = 0.22
  notch_width: float = 0.035
  dia_pos: float = 0.42
  dia_amp: float = 0.45
  dia_width: float = 0.09


@dataclasses.dataclass(frozen=True)
class PPGSample:
  """A synthetic PPG recording.

  Attributes:
    ppg: float32 [N] waveform (pulse amplitude about 1).
    beat_times: float64 [B] seconds at which the beat phase crosses an integer
      (beat onsets).
    instantaneous_hr: float32 [N] instantaneous heart rate in bpm at each sample.
    mean_hr: mean heart rate in bpm measured from the beat times
      (60 / mean inter-beat interval).
    fs: sampling rate in Hz.
    morphology: the beat-template parameters used.
  """

  ppg: np.ndarray
  beat_times: np.ndarray
  instantaneous_hr: np.ndarray
  mean_hr: float
  fs: float
  morphology: MorphologyParams


def as_generator(rng: np.random.Generator | int) -> np.random.Generator:
  """Accepts a Generator or an integer seed."""
  if isinstance(rng, np.random.Generator):
    return rng
  if isinstance(rng, (int, np.integer)):
    return np.random.default_rng(int(rng))
  raise ValueError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def sample_morphology(rng: np.random.Generator | int) -> MorphologyParams:
  """Draws per-subject beat-shape parameters around the defaults."""
  rng = as_generator(rng)
  u = lambda lo, hi: float(rng.uniform(lo, hi))
  sys_pos = u(0.13, 0.19)
  notch_pos = sys_pos + u(0.16, 0.20)
  return MorphologyParams(
      sys_pos=sys_pos,
      sys_width_rise=u(0.035, 0.055),
      sys_width_fall=u(0.075, 0.10),
      notch_pos=notch_pos,
      notch_depth=u(0.15, 0.30),
      notch_width=u(0.028, 0.04),
      dia_pos=notch_pos + u(0.06, 0.10),
      dia_amp=u(0.3, 0.6),
      dia_width=u(0.07, 0.11),
  )


def _wrapped_offset(phase: np.ndarray, centre: np.ndarray | float) -> np.ndarray:
  # Distance on the unit circle so components near 0 or 1 continue smoothly
  # into the neighbouring beat.
  return (phase - centre + 0.5) % 1.0 - 0.5


def beat_template(
    phase: np.ndarray, morphology: MorphologyParams, *, rr_s: np.ndarray | float = 1.0
) -> np.ndarray:
  """Evaluates the beat template at beat phase(s) in [0, 1) for the local RR interval(s) in seconds."""
  phase = np.asarray(phase, dtype=np.float64)
  stretch = np.clip(
      np.sqrt(_REFERENCE_RR_S / np.asarray(rr_s, dtype=np.float64)),
      1.0 / _MAX_PHASE_STRETCH,
      _MAX_PHASE_STRETCH,
  )
  m = morphology
  d_sys = _wrapped_offset(phase, m.sys_pos * stretch)
  width = np.where(d_sys < 0, m.sys_width_rise, m.sys_width_fall) * stretch
  systolic = np.exp(-0.5 * (d_sys / width) ** 2)
  notch = m.notch_depth * np.exp(
      -0.5 * (_wrapped_offset(phase, m.notch_pos * stretch) / (m.notch_width * stretch)) ** 2
  )
  diastolic = m.dia_amp * np.exp(
      -0.5 * (_wrapped_offset(phase, m.dia_pos * stretch) / (m.dia_width * stretch)) ** 2
  )
  return systolic - notch + diastolic


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
  """Unit-std Gaussian noise low-passed (FFT brick-wall) below cutoff_hz."""
  spec = np.fft.rfft(rng.standard_normal(n))
  spec[np.fft.rfftfreq(n, 1.0 / fs) > cutoff_hz] = 0.0
  x = np.fft.irfft(spec, n)
  x -= x.mean()
  std = x.std()
  return x / std if std > 0 else x


def synth_ppg(
    num_samples: int,
    fs: float,
    *,
    mean_hr_bpm: float,
    rng: np.random.Generator | int,
    hrv_std_bpm: float = 2.0,
    lf_hz: float = 0.1,
    resp_rate_hz: float = 0.25,
    resp_am: float = 0.1,
    resp_bm: float = 0.05,
    drift_std: float = 0.05,
    morphology: MorphologyParams | None = None,
    noise_std: float = 0.0,
) -> PPGSample:
  """Generates a realistic PPG waveform with a known heart-rate trajectory.

  Args:
    num_samples: N, number of samples.
    fs: sampling rate in Hz.
    mean_hr_bpm: target mean heart rate (the time average of the instantaneous
      rate equals this exactly; `PPGSample.mean_hr` is measured from beats).
    rng: numpy Generator or int seed; the output is a pure function of it.
    hrv_std_bpm: standard deviation of the instantaneous heart rate, split
      between LF (Mayer-wave), HF (respiratory sinus arrhythmia) and smoothed
      random components. 0 gives a constant rate.
    lf_hz: centre of the LF heart-rate modulation.
    resp_rate_hz: breathing rate; drives RSA, amplitude and baseline modulation.
    resp_am: relative respiratory amplitude modulation depth.
    resp_bm: respiratory baseline modulation (in pulse-amplitude units).
    drift_std: std of a slow (< 0.05 Hz) baseline drift.
    morphology: beat template; drawn with `sample_morphology(rng)` if None.
    noise_std: white Gaussian noise std.

  Returns:
    A `PPGSample`.
  """
  if num_samples < 2:
    raise ValueError(f"num_samples must be >= 2, got {num_samples}")
  if fs <= 0:
    raise ValueError(f"fs must be positive, got {fs}")
  if not 20.0 <= mean_hr_bpm <= 250.0:
    raise ValueError(f"mean_hr_bpm must be in [20, 250], got {mean_hr_bpm}")
  rng = as_generator(rng)
  if morphology is None:
    morphology = sample_morphology(rng)
  t = np.arange(num_samples) / fs

  # Heart-rate trajectory: the variable part is made exactly zero-mean and
  # scaled to the requested std, so the mean rate is what the caller asked for.
  lf = np.sin(2 * np.pi * lf_hz * rng.uniform(0.8, 1.2) * t + rng.uniform(0, 2 * np.pi))
  hf = np.sin(2 * np.pi * resp_rate_hz * t + rng.uniform(0, 2 * np.pi))
  rand = _smooth_noise(rng, num_samples, fs, cutoff_hz=min(0.4, 0.45 * fs))
  weights = rng.dirichlet([4.0, 3.0, 3.0])
  variation = np.sqrt(weights[0]) * lf + np.sqrt(weights[1]) * hf + np.sqrt(weights[2]) * rand
  variation -= variation.mean()
  std = variation.std()
  variation = (
      variation / std * hrv_std_bpm if std > 0 and hrv_std_bpm > 0 else np.zeros_like(variation)
  )
  inst_hr = np.clip(mean_hr_bpm + variation, 25.0, 240.0)

  # Beat phase by trapezoidal integration of the rate; beats are integer crossings.
  rate_hz = inst_hr / 60.0
  phase = rng.uniform(0.0, 1.0) + np.concatenate(
      [[0.0], np.cumsum(0.5 * (rate_hz[1:] + rate_hz[:-1]) / fs)]
  )
  crossings = np.nonzero(np.floor(phase[1:]) > np.floor(phase[:-1]))[0]
  target = np.floor(phase[crossings + 1])
  frac = (target - phase[crossings]) / (phase[crossings + 1] - phase[crossings])
  beat_times = (crossings + frac) / fs
  mean_hr = (
      float(60.0 / np.mean(np.diff(beat_times)))
      if beat_times.size >= 2
      else float(np.mean(inst_hr))
  )

  pulse = beat_template(phase % 1.0, morphology, rr_s=1.0 / rate_hz)
  resp_phase = 2 * np.pi * resp_rate_hz * t + rng.uniform(0, 2 * np.pi)
  ppg = pulse * (1.0 + resp_am * np.sin(resp_phase)) + resp_bm * np.sin(resp_phase + 0.5)
  if drift_std > 0:
    ppg += drift_std * _smooth_noise(rng, num_samples, fs, cutoff_hz=0.05)
  if noise_std > 0:
    ppg += noise_std * rng.standard_normal(num_samples)
  return PPGSample(
      ppg=ppg.astype(np.float32),
      beat_times=beat_times,
      instantaneous_hr=inst_hr.astype(np.float32),
      mean_hr=mean_hr,
      fs=float(fs),
      morphology=morphology,
  )


# Relative pulsatile amplitudes of (R, G, B) in normalised skin reflectance
# (de Haan & van Leest 2014 report about [0.33, 0.77, 0.53] for their camera).
DEFAULT_PBV = (0.33, 0.77, 0.53)
DEFAULT_SKIN_RGB = (0.7, 0.5, 0.4)


def synth_rgb_trace(
    ppg: np.ndarray,
    fs: float,
    *,
    rng: np.random.Generator | int,
    skin_rgb: Sequence[float] = DEFAULT_SKIN_RGB,
    pbv: Sequence[float] = DEFAULT_PBV,
    pulse_strength: float = 0.01,
    brightness: float = 200.0,
    illum_drift: float = 0.05,
    illum_wave: float = 0.02,
    illum_wave_hz: tuple[float, float] = (0.1, 0.3),
    noise_std: float = 0.02,
) -> np.ndarray:
  """Per-frame mean skin RGB [N, 3] (R, G, B; 0..255 scale) carrying the pulse `ppg`.

  C(t) = brightness * skin * I(t) * (1 + pulse_strength * p(t) * pbv) + noise, with
  p the standardised PPG and I(t) = 1 + slow drift + a few 0.1-0.3 Hz intensity
  changes shared by all channels. `noise_std` is per channel, in grey levels.
  """
  rng = as_generator(rng)
  ppg = np.asarray(ppg, dtype=np.float64)
  n = ppg.shape[0]
  t = np.arange(n) / fs
  p = (ppg - ppg.mean()) / max(float(ppg.std()), 1e-12)
  illum = 1.0 + illum_drift * _smooth_noise(rng, n, fs, cutoff_hz=0.03)
  for _ in range(3):
    f = rng.uniform(*illum_wave_hz)
    illum += illum_wave / np.sqrt(3) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
  skin = brightness * np.asarray(skin_rgb, dtype=np.float64)
  rgb = (
      skin[None, :]
      * illum[:, None]
      * (1.0 + pulse_strength * p[:, None] * np.asarray(pbv)[None, :])
  )
  return rgb + noise_std * rng.standard_normal(rgb.shape)
