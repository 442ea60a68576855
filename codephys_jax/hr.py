"""Heart-rate estimators for post-processed (detrended, band-passed) pulse signals.

Estimators are looked up by name in `ESTIMATORS`; each has the signature
``fn(x, fs, *, low_hz, high_hz) -> float`` and returns beats per minute:

- ``fft``: the toolbox convention: periodogram, nfft = next power of two >= N,
  argmax inside [low_hz, high_hz], x 60.
- ``peak``: systolic peaks (minimum spacing 1 / high_hz), 60 / mean inter-beat interval.
- ``hann_dft``: the CodePhys per-clip convention: Hann-windowed DFT evaluated directly
  at a 1-bpm grid 40..179 bpm; the band arguments are not used (the grid is the band).
- ``robust``: `robust_hr`: SQI-weighted sliding-window spectrum with a sub-harmonic
  check and parabolic peak interpolation (see its docstring).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import scipy.signal

from codephys_jax import signal as sig

# The CodePhys per-clip grid (bpm): 40, 41, ..., 179.
HANN_DFT_BPM = np.arange(40, 180, dtype=np.float64)


def _check(x, fs: float, low_hz: float, high_hz: float) -> np.ndarray:
  arr = np.asarray(x, dtype=np.float64).squeeze()
  if arr.ndim != 1:
    raise ValueError(f"HR estimation needs a 1-D signal, got shape {np.shape(x)}")
  if arr.shape[0] < 2:
    raise ValueError(f"HR estimation needs >= 2 samples, got {arr.shape[0]}")
  if not fs > 0:
    raise ValueError(f"sampling rate fs must be > 0, got {fs}")
  if not 0.0 < low_hz < high_hz <= fs / 2.0:
    raise ValueError(
        f"need 0 < low_hz < high_hz <= fs/2; got low_hz={low_hz}, " f"high_hz={high_hz}, fs={fs}"
    )
  return arr


def hr_fft(x, fs: float, *, low_hz: float = 0.75, high_hz: float = 2.5) -> float:
  """Periodogram argmax inside the band (nfft = next_pow2(N)), in bpm."""
  arr = _check(x, fs, low_hz, high_hz)
  freqs, pxx = scipy.signal.periodogram(arr, fs=fs, nfft=sig.next_pow2(arr.shape[0]), detrend=False)
  mask = (freqs >= low_hz) & (freqs <= high_hz)
  if not np.any(mask):
    raise ValueError(f"no periodogram bin inside [{low_hz}, {high_hz}] Hz for N={arr.shape[0]}")
  band_f = freqs[mask]
  return float(band_f[np.argmax(pxx[mask])] * 60.0)


def fft_half_power_range(
    x, fs: float, *, low_hz: float = 0.75, high_hz: float = 2.5, fraction: float = 0.5
) -> tuple[float, float]:
  """(lowest, highest) bpm of the `hr_fft` periodogram bins inside the band whose
  power is at least `fraction` of the in-band peak.

  For a reference PPG this says how well one number describes the recording: a
  steady pulse gives a range one or two bins wide around `hr_fft`'s value, a heart
  rate that drifts during the recording spreads the range over the rates it held,
  and `hr_fft` is then only the largest of several nearly equal bins.
  """
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"fraction must be in (0, 1], got {fraction}")
  arr = _check(x, fs, low_hz, high_hz)
  freqs, pxx = scipy.signal.periodogram(arr, fs=fs, nfft=sig.next_pow2(arr.shape[0]), detrend=False)
  mask = (freqs >= low_hz) & (freqs <= high_hz)
  if not np.any(mask):
    raise ValueError(f"no periodogram bin inside [{low_hz}, {high_hz}] Hz for N={arr.shape[0]}")
  band_f, band_p = freqs[mask], pxx[mask]
  strong = band_f[band_p >= fraction * band_p.max()]
  return float(strong.min() * 60.0), float(strong.max() * 60.0)


def hr_peak(x, fs: float, *, low_hz: float = 0.75, high_hz: float = 2.5) -> float:
  """60 / mean inter-beat interval of the detected peaks, in bpm.

  Peaks closer than 1 / high_hz seconds are merged (the fastest allowed heart rate),
  which stops dicrotic notches from counting as beats. Returns NaN when fewer than two
  peaks are found (no interval to measure).
  """
  arr = _check(x, fs, low_hz, high_hz)
  distance = max(1, int(np.floor(fs / high_hz)))
  peaks, _ = scipy.signal.find_peaks(arr, distance=distance)
  if peaks.shape[0] < 2:
    return float("nan")
  return float(60.0 * fs / np.mean(np.diff(peaks)))


def hann_dft_spectrum(
    x, fs: float, *, bpm: np.ndarray = HANN_DFT_BPM
) -> tuple[np.ndarray, np.ndarray]:
  """Power of the Hann-windowed, mean-removed signal at the frequencies `bpm` / 60.

  A direct DFT (not an FFT) so the grid is exactly 1 bpm whatever N is.
  """
  arr = np.asarray(x, dtype=np.float64).squeeze()
  if arr.ndim != 1 or arr.shape[0] < 2:
    raise ValueError(f"need a 1-D signal with >= 2 samples, got shape {np.shape(x)}")
  bpm = np.asarray(bpm, dtype=np.float64)
  n = arr.shape[0]
  windowed = (arr - arr.mean()) * scipy.signal.windows.hann(n, sym=False)
  t = np.arange(n) / fs
  phase = 2.0 * np.pi * np.outer(bpm / 60.0, t)
  power = np.square(np.cos(phase) @ windowed) + np.square(np.sin(phase) @ windowed)
  return bpm, power


def hr_hann_dft(x, fs: float, *, low_hz: float = 0.75, high_hz: float = 2.5) -> float:
  """CodePhys per-clip HR: argmax of `hann_dft_spectrum` on the 40..179 bpm grid.

  low_hz / high_hz are accepted for a uniform signature but the convention fixes the
  grid, so they are not used.
  """
  del low_hz, high_hz
  bpm, power = hann_dft_spectrum(x, fs)
  return float(bpm[np.argmax(power)])


@dataclasses.dataclass(frozen=True)
class RobustHR:
  """Result of `robust_hr`.

  hr: bpm from the SQI-weighted average spectrum.
  quality: fraction (0..1) of the averaged spectrum's power within +-tol_bpm of hr and
    2 hr (the same SQI definition as for one window).
  window_hr, window_sqi, window_start_s: per-window peak HR (bpm), SQI and start time.
  reliable: quality >= the threshold given to `robust_hr`.
  """

  hr: float
  quality: float
  window_hr: np.ndarray
  window_sqi: np.ndarray
  window_start_s: np.ndarray
  reliable: bool


def _parabolic_peak(freqs: np.ndarray, power: np.ndarray, k: int) -> float:
  """Vertex of the parabola through bins k-1, k, k+1 (sub-bin peak frequency)."""
  if k <= 0 or k >= power.shape[0] - 1:
    return float(freqs[k])
  a, b, c = power[k - 1], power[k], power[k + 1]
  denom = a - 2.0 * b + c
  if denom >= 0:  # not a strict local maximum: no curvature to use
    return float(freqs[k])
  offset = 0.5 * (a - c) / denom
  return float(freqs[k] + np.clip(offset, -0.5, 0.5) * (freqs[1] - freqs[0]))


def _power_near(freqs: np.ndarray, power: np.ndarray, f0: float, tol_hz: float) -> float:
  return float(power[np.abs(freqs - f0) <= tol_hz].sum())


def _sqi(
    freqs: np.ndarray, power: np.ndarray, f0: float, tol_hz: float, denom_mask: np.ndarray
) -> float:
  total = float(power[denom_mask].sum())
  if total <= 0:
    return 0.0
  inside = denom_mask & ((np.abs(freqs - f0) <= tol_hz) | (np.abs(freqs - 2.0 * f0) <= tol_hz))
  return float(power[inside].sum() / total)


def _pick_fundamental(
    freqs: np.ndarray,
    power: np.ndarray,
    band: np.ndarray,
    analysis: np.ndarray,
    tol_hz: float,
    low_hz: float,
    subharmonic_ratio: float,
    prominence: float,
) -> int:
  """Index of the band argmax, moved to the sub-harmonic f/2 when that is a genuine
  local peak carrying at least `subharmonic_ratio` of the peak's power.

  A pulse with a strong second harmonic puts the argmax on 2 f0; the fundamental is
  then still a clear local maximum at f0, which is what this looks for.
  """
  idx = np.flatnonzero(band)
  k = int(idx[np.argmax(power[idx])])
  half = freqs[k] / 2.0
  if half < low_hz:
    return k
  near = band & (np.abs(freqs - half) <= tol_hz)
  if not np.any(near):
    return k
  cand = np.flatnonzero(near)
  j = int(cand[np.argmax(power[cand])])
  is_local_max = (
      0 < j < power.shape[0] - 1 and power[j] >= power[j - 1] and power[j] >= power[j + 1]
  )
  # A noise bump can be a local maximum too: also demand that it stands well above
  # the typical (median) level of the analysis range.
  floor = float(np.median(power[analysis]))
  if is_local_max and power[j] >= subharmonic_ratio * power[k] and power[j] >= prominence * floor:
    return j
  return k


def robust_hr(
    x,
    fs: float,
    *,
    low_hz: float = 0.75,
    high_hz: float = 2.5,
    window_s: float = 10.0,
    overlap: float = 0.5,
    tol_bpm: float = 6.0,
    subharmonic_ratio: float = 0.15,
    prominence: float = 30.0,
    quality_threshold: float = 0.35,
    min_resolution_bpm: float = 0.25,
) -> RobustHR:
  """HR for noisy waveforms: SQI-weighted sliding-window spectrum.

  1. Hann-windowed periodograms of `window_s` windows with `overlap` (one window of
     the whole signal when it is shorter), zero-padded to <= `min_resolution_bpm`
     bins.
  2. Each window spectrum is scaled to unit power over the analysis range
     [low_hz, min(2 high_hz, fs/2)] so a loud motion burst cannot dominate by
     amplitude, then weighted by its SQI: the fraction of that power within
     +-tol_bpm of the window's peak and of twice the peak. Broadband bursts get a
     low SQI and little weight.
  3. On the weighted mean spectrum: band argmax, moved to f/2 when f/2 is a local
     peak with >= `subharmonic_ratio` of the peak power and >= `prominence` times
     the median power of the analysis range (pulse with a strong second harmonic),
     then parabolic interpolation for sub-bin precision.

  `quality` is the SQI of the weighted mean spectrum at the chosen HR. On synthetic
  tests a clean pulse gives ~0.9, white noise ~0.2, which is why the default
  `quality_threshold` is 0.35.
  """
  arr = _check(x, fs, low_hz, high_hz)
  if not 0.0 <= overlap < 1.0:
    raise ValueError(f"overlap must be in [0, 1), got {overlap}")
  if not window_s > 0:
    raise ValueError(f"window_s must be > 0, got {window_s}")
  n = arr.shape[0]
  win = min(n, max(2, int(round(window_s * fs))))
  step = max(1, int(round(win * (1.0 - overlap))))
  starts = list(range(0, n - win + 1, step))
  if starts[-1] + win < n:
    # Cover the tail too; the last window ends exactly at the signal end.
    starts.append(n - win)
  nfft = max(sig.next_pow2(win), sig.next_pow2(int(np.ceil(fs * 60.0 / min_resolution_bpm))))
  freqs = np.fft.rfftfreq(nfft, d=1.0 / fs)
  taper = scipy.signal.windows.hann(win, sym=False)
  band = (freqs >= low_hz) & (freqs <= high_hz)
  analysis = (freqs >= low_hz) & (freqs <= min(2.0 * high_hz, fs / 2.0))
  tol_hz = tol_bpm / 60.0

  spectra, window_hr, window_sqi = [], [], []
  for s in starts:
    seg = arr[s : s + win]
    seg = (seg - seg.mean()) * taper
    power = np.square(np.abs(np.fft.rfft(seg, n=nfft)))
    total = power[analysis].sum()
    if total <= 0 or not np.isfinite(total):
      spectra.append(np.zeros_like(power))
      window_hr.append(np.nan)
      window_sqi.append(0.0)
      continue
    power = power / total
    k = _pick_fundamental(
        freqs, power, band, analysis, tol_hz, low_hz, subharmonic_ratio, prominence
    )
    f_k = _parabolic_peak(freqs, power, k)
    spectra.append(power)
    window_hr.append(f_k * 60.0)
    window_sqi.append(_sqi(freqs, power, freqs[k], tol_hz, analysis))

  window_sqi_arr = np.asarray(window_sqi)
  weights = window_sqi_arr
  if weights.sum() <= 0:
    weights = np.ones_like(weights)
  mean_spec = np.average(np.stack(spectra), axis=0, weights=weights)
  if mean_spec[band].sum() <= 0:
    return RobustHR(
        hr=float("nan"),
        quality=0.0,
        window_hr=np.asarray(window_hr),
        window_sqi=window_sqi_arr,
        window_start_s=np.asarray(starts) / fs,
        reliable=False,
    )
  k = _pick_fundamental(
      freqs, mean_spec, band, analysis, tol_hz, low_hz, subharmonic_ratio, prominence
  )
  hr = _parabolic_peak(freqs, mean_spec, k) * 60.0
  quality = _sqi(freqs, mean_spec, freqs[k], tol_hz, analysis)
  return RobustHR(
      hr=float(hr),
      quality=float(quality),
      window_hr=np.asarray(window_hr, dtype=np.float64),
      window_sqi=window_sqi_arr,
      window_start_s=np.asarray(starts, dtype=np.float64) / fs,
      reliable=bool(quality >= quality_threshold),
  )


def hr_robust(x, fs: float, *, low_hz: float = 0.75, high_hz: float = 2.5) -> float:
  """`robust_hr(...).hr` with default settings, for the registry."""
  return robust_hr(x, fs, low_hz=low_hz, high_hz=high_hz).hr


ESTIMATORS: dict[str, Callable[..., float]] = {
    "fft": hr_fft,
    "peak": hr_peak,
    "hann_dft": hr_hann_dft,
    "robust": hr_robust,
}


def estimate_hr(
    x, fs: float, *, method: str = "fft", low_hz: float = 0.75, high_hz: float = 2.5
) -> float:
  """Heart rate (bpm) of a post-processed signal with the estimator `method`."""
  try:
    fn = ESTIMATORS[method]
  except KeyError:
    raise ValueError(
        f"unknown HR method {method!r}; expected one of " f"{sorted(ESTIMATORS)}"
    ) from None
  return fn(x, fs, low_hz=low_hz, high_hz=high_hz)
