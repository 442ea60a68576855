"""Evaluation metrics: HR error statistics, SNR and MACC (rPPG-Toolbox definitions).

Standard errors follow the toolbox exactly (population std, ``np.std``):

- MAE  = mean|e|,              SE = std(|e|) / sqrt(n)
- RMSE = sqrt(mean e^2),       SE = sqrt(std(e^2) / sqrt(n))   (toolbox form)
- MAPE = 100 mean|e / ref|,    SE = 100 std(|e / ref|) / sqrt(n)
- Pearson r,                   SE = sqrt((1 - r^2) / (n - 2))
- SD   = std(e, ddof=1)        SE = SD / sqrt(2 (n - 1))  (sample SD, Bland-Altman
  convention; the toolbox does not report SD)

with e = pred - ref. Statistics that need more samples than given are NaN, never an
exception. Non-finite pairs (e.g. an HR estimator that found no beats) are left out and
counted in ``num_nonfinite``; ``num`` is the number of pairs used.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.signal

from codephys_jax import signal as sig

_NAN = float("nan")


def hr_metrics(hr_pred: npt.ArrayLike, hr_ref: npt.ArrayLike) -> dict[str, float]:
  """MAE, RMSE, MAPE (%), Pearson, SD and their standard errors, plus counts."""
  pred = np.asarray(hr_pred, dtype=np.float64).reshape(-1)
  ref = np.asarray(hr_ref, dtype=np.float64).reshape(-1)
  if pred.shape != ref.shape:
    raise ValueError(f"hr_pred has {pred.size} values but hr_ref has {ref.size}")
  finite = np.isfinite(pred) & np.isfinite(ref)
  pred, ref = pred[finite], ref[finite]
  n = int(pred.size)
  out = {
      k: _NAN
      for k in (
          "mae",
          "mae_se",
          "rmse",
          "rmse_se",
          "mape",
          "mape_se",
          "pearson",
          "pearson_se",
          "sd",
          "sd_se",
      )
  }
  out["num"] = float(n)
  out["num_nonfinite"] = float(np.count_nonzero(~finite))
  if n == 0:
    return out
  err = pred - ref
  abs_err = np.abs(err)
  sq = np.square(err)
  out["mae"] = float(abs_err.mean())
  out["rmse"] = float(math.sqrt(sq.mean()))
  with np.errstate(divide="ignore", invalid="ignore"):
    rel = abs_err / np.abs(ref) * 100.0
  out["mape"] = float(rel.mean())
  if n >= 2:
    root_n = math.sqrt(n)
    out["mae_se"] = float(abs_err.std() / root_n)
    out["rmse_se"] = float(math.sqrt(sq.std() / root_n))
    out["mape_se"] = float(rel.std() / root_n)
    out["sd"] = float(err.std(ddof=1))
    out["sd_se"] = float(out["sd"] / math.sqrt(2.0 * (n - 1)))
    if pred.std() > 0 and ref.std() > 0:
      r = float(np.corrcoef(pred, ref)[0, 1])
      out["pearson"] = r
      if n >= 3:
        out["pearson_se"] = float(math.sqrt(max(0.0, 1.0 - r * r) / (n - 2)))
  return out


def snr_db(
    signal: npt.ArrayLike,
    fs: float,
    hr_ref_bpm: float,
    *,
    low_hz: float = 0.75,
    high_hz: float = 2.5,
    tol_bpm: float = 6.0,
) -> float:
  """SNR (dB) of a pulse signal given the reference HR.

  Signal power: periodogram (nfft = next_pow2(N)) within +-tol_bpm of the reference
  HR and of its 2nd harmonic (the harmonic counts even above high_hz). Noise power: the
  remaining bins in [low_hz, high_hz]. Returns +inf when there is no noise power and
  -inf when there is no signal power; NaN if hr_ref_bpm is not finite.
  """
  x = np.asarray(signal, dtype=np.float64).reshape(-1)
  if x.size < 2:
    raise ValueError(f"snr_db needs >= 2 samples, got {x.size}")
  if not math.isfinite(hr_ref_bpm):
    return _NAN
  freqs, pxx = scipy.signal.periodogram(x, fs=fs, nfft=sig.next_pow2(x.size), detrend=False)
  f1 = hr_ref_bpm / 60.0
  tol = tol_bpm / 60.0
  h1 = np.abs(freqs - f1) <= tol
  h2 = np.abs(freqs - 2.0 * f1) <= tol
  rest = (freqs >= low_hz) & (freqs <= high_hz) & ~h1 & ~h2
  p_sig = float(pxx[h1 | h2].sum())
  p_noise = float(pxx[rest].sum())
  if p_noise <= 0:
    return float("inf") if p_sig > 0 else _NAN
  if p_sig <= 0:
    return float("-inf")
  return float(10.0 * math.log10(p_sig / p_noise))


def macc(pred: npt.ArrayLike, ref: npt.ArrayLike, *, max_lag: int | None = None) -> float:
  """Maximum |Pearson correlation| between pred and circular shifts of ref.

  As in the toolbox (which rolls the reference with np.roll), shifts are circular;
  computed for all lags at once with an FFT. `max_lag=None` tries every lag, otherwise
  lags -max_lag..max_lag. The longer input is truncated to the shorter length. A
  constant input gives NaN.
  """
  a = np.asarray(pred, dtype=np.float64).reshape(-1)
  b = np.asarray(ref, dtype=np.float64).reshape(-1)
  n = min(a.size, b.size)
  if n < 2:
    raise ValueError(f"macc needs >= 2 samples in both signals, got {a.size}, {b.size}")
  a, b = a[:n], b[:n]
  sa, sb = a.std(), b.std()
  if sa == 0 or sb == 0:
    return _NAN
  za = (a - a.mean()) / sa
  zb = (b - b.mean()) / sb
  # corr[k] = mean_t za[t] * zb[t - k] (circular): the correlation with np.roll(zb, k).
  corr = np.fft.irfft(np.fft.rfft(za) * np.conj(np.fft.rfft(zb)), n=n) / n
  if max_lag is not None:
    if max_lag < 0:
      raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    lags = np.arange(-min(max_lag, n - 1), min(max_lag, n - 1) + 1)
    corr = corr[lags % n]
  return float(np.clip(np.max(np.abs(corr)), 0.0, 1.0))
