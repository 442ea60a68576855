"""Unsupervised (training-free) rPPG methods on per-frame mean skin RGB.

Every method maps `rgb` [N, 3] (R, G, B order, any positive scale) sampled at
`fs` Hz to a zero-mean blood-volume-pulse estimate [N] (float64). The output is
not band-passed or detrended unless the paper's method does so itself; apply
`codephys_jax.signal.postprocess` before estimating heart rate, exactly as for
network predictions. The sign of the output is arbitrary for ICA/LGI/OMIT-style
projections; ICA's component is oriented to correlate with the green channel.

Methods (registry `METHODS`, look-up by name with `get_method`):
  green: Verkruysse et al. 2008, the green channel.
  ica:   Poh et al. 2010, detrend + z-score, FastICA (NumPy, symmetric, logcosh),
         component with the highest normalised spectral peak in the HR band.
  chrom: de Haan & Jeanne 2013, chrominance X = 3R - 2G, Y = 1.5R + G - 1.5B,
         band-passed, S = Xf - alpha Yf per 1.6 s window, Hann overlap-add.
  pos:   Wang et al. 2017, plane-orthogonal-to-skin projection, 1.6 s sliding
         window with temporal normalisation, alpha tuning, overlap-add.
  lgi:   Pilz et al. 2018, local group invariance: remove the dominant SVD
         direction of the RGB matrix and keep the green row of the projection.
  pbv:   de Haan & van Leest 2014, blood-volume-pulse signature projection
         w ~ Pbv^T Q^{-1}, signature from the normalised channel std in the HR band.
  omit:  Casado & Lopez 2023, orthogonal matrix image transformation: QR
         decomposition gives an orthonormal basis whose first vector is the skin
         tone; the projection orthogonal to it, green row.

Missing frames: rows that are non-finite (NaN/inf) or all zero (the ROI was
rejected, or a mean over an empty mask) are treated as missing and each channel
is linearly interpolated over them from the valid frames (held constant before
the first / after the last valid frame). A trace with fewer than two valid
frames raises ValueError.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from codephys_jax import signal as sig

Method = Callable[..., np.ndarray]

# Window of the windowed methods (CHROM, POS): 1.6 s, as in both papers (about
# one cardiac cycle at the lowest heart rate of interest).
WINDOW_S = 1.6
# HR band used inside methods that need one (ICA component choice, CHROM, PBV).
HR_BAND_HZ = (0.75, 2.5)
_EPS = 1e-9


def prepare_rgb(rgb: np.ndarray) -> np.ndarray:
  """Validates [N, 3] and interpolates over missing (non-finite / all-zero) frames; float64."""
  arr = np.asarray(rgb, dtype=np.float64)
  if arr.ndim != 2 or arr.shape[1] != 3:
    raise ValueError(f"rgb must have shape [N, 3] (R, G, B), got {np.shape(rgb)}")
  valid = np.all(np.isfinite(arr), axis=1) & np.any(arr != 0, axis=1)
  n_valid = int(valid.sum())
  if n_valid < 2:
    raise ValueError(f"rgb trace has {n_valid} valid frames out of {arr.shape[0]}; need at least 2")
  if n_valid == arr.shape[0]:
    return arr.copy()
  idx = np.arange(arr.shape[0])
  out = np.empty_like(arr)
  for c in range(3):
    out[:, c] = np.interp(idx, idx[valid], arr[valid, c])
  return out


def _band(fs: float, low_hz: float, high_hz: float) -> tuple[float, float]:
  # Keep the band valid for low frame rates (e.g. 8 fps thumbnails).
  return low_hz, min(high_hz, 0.45 * fs)


def _window_len(fs: float, n: int) -> int:
  return int(min(n, max(2, np.ceil(WINDOW_S * fs))))


def _window_starts(n: int, win: int, step: int) -> np.ndarray:
  starts = np.arange(0, max(n - win, 0) + 1, step)
  if starts[-1] + win < n:  # make the last window end exactly at n
    starts = np.append(starts, n - win)
  return starts


def _overlap_add(segments: np.ndarray, starts: np.ndarray, n: int, taper: np.ndarray) -> np.ndarray:
  """Weighted overlap-add, normalised by the summed weights so edges keep their amplitude."""
  win = segments.shape[1]
  out = np.zeros(n)
  weight = np.zeros(n)
  # Loop over the (short) window offset, vectorised over all windows.
  for k in range(win):
    np.add.at(out, starts + k, segments[:, k] * taper[k])
    np.add.at(weight, starts + k, taper[k])
  return out / np.maximum(weight, _EPS)


def _finish(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  return x - x.mean()


def green(rgb: np.ndarray, fs: float) -> np.ndarray:
  """Verkruysse 2008: the green channel carries the strongest plethysmographic signal."""
  del fs
  return _finish(prepare_rgb(rgb)[:, 1])


def fastica(x: np.ndarray, *, max_iter: int = 200, tol: float = 1e-6, seed: int = 0) -> np.ndarray:
  """Symmetric FastICA with the logcosh contrast (Hyvarinen 1999).

  Args:
    x: [N, C] observations (rows are samples).
  Returns:
    [N, C] unit-variance independent components (order and sign arbitrary).
  """
  x = x - x.mean(axis=0)
  cov = x.T @ x / x.shape[0]
  evals, evecs = np.linalg.eigh(cov)
  keep = evals > evals.max() * 1e-12
  whitener = evecs[:, keep] / np.sqrt(evals[keep])
  z = x @ whitener  # [N, K], identity covariance
  k = z.shape[1]
  w = np.linalg.qr(np.random.default_rng(seed).standard_normal((k, k)))[0]
  for _ in range(max_iter):
    y = z @ w.T  # [N, K]
    g = np.tanh(y)
    g_prime = 1.0 - g**2
    w_new = (g.T @ z) / z.shape[0] - g_prime.mean(axis=0)[:, None] * w
    # Symmetric decorrelation: W <- (W W^T)^{-1/2} W.
    u, _, vt = np.linalg.svd(w_new)
    w_new = u @ vt
    converged = np.max(np.abs(np.abs(np.sum(w_new * w, axis=1)) - 1.0)) < tol
    w = w_new
    if converged:
      break
  return z @ w.T


def _normalised_peak(x: np.ndarray, fs: float, low_hz: float, high_hz: float) -> np.ndarray:
  """Max of the sum-normalised power spectrum inside the band, per column of x [N, K]."""
  nfft = sig.next_pow2(x.shape[0])
  power = np.abs(np.fft.rfft(x - x.mean(axis=0), n=nfft, axis=0)) ** 2
  power /= np.maximum(power.sum(axis=0, keepdims=True), _EPS)
  freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
  band = (freqs >= low_hz) & (freqs <= high_hz)
  return power[band].max(axis=0)


def ica(
    rgb: np.ndarray,
    fs: float,
    *,
    low_hz: float = HR_BAND_HZ[0],
    high_hz: float = HR_BAND_HZ[1],
    detrend_lambda: float = 100.0,
    seed: int = 0,
) -> np.ndarray:
  """Poh 2010: detrend and z-score the traces, ICA, keep the most periodic component in the HR band."""
  c = prepare_rgb(rgb)
  c = sig.detrend(c, lam=detrend_lambda, axis=0)
  c = (c - c.mean(axis=0)) / np.maximum(c.std(axis=0), _EPS)
  sources = fastica(c, seed=seed)
  low, high = _band(fs, low_hz, high_hz)
  best = sources[:, int(np.argmax(_normalised_peak(sources, fs, low, high)))]
  # Orient like the green channel so the sign is reproducible across runs.
  if np.dot(best, c[:, 1]) < 0:
    best = -best
  return _finish(best)


def chrom(
    rgb: np.ndarray,
    fs: float,
    *,
    low_hz: float = HR_BAND_HZ[0],
    high_hz: float = HR_BAND_HZ[1],
    order: int = 3,
) -> np.ndarray:
  """de Haan 2013 (CHROM), windowed with Hann overlap-add.

  The RGB traces are normalised by their mean in a centred 1.6 s window, the
  chrominance signals are band-passed over the whole trace (a 1.6 s window is
  too short to filter at 0.75 Hz on its own), and alpha = std(Xf)/std(Yf) is
  tuned per 1.6 s window with 50% overlap.
  """
  c = prepare_rgb(rgb)
  n = c.shape[0]
  win = _window_len(fs, n)
  # Centred moving mean via cumulative sums (edge windows shrink).
  csum = np.vstack([np.zeros((1, 3)), np.cumsum(c, axis=0)])
  lo = np.clip(np.arange(n) - win // 2, 0, n)
  hi = np.clip(np.arange(n) + (win - win // 2), 0, n)
  local_mean = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
  cn = c / np.maximum(local_mean, _EPS)
  xs = 3.0 * cn[:, 0] - 2.0 * cn[:, 1]
  ys = 1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2]
  low, high = _band(fs, low_hz, high_hz)
  xf = sig.bandpass(xs, fs, low_hz=low, high_hz=high, order=order)
  yf = sig.bandpass(ys, fs, low_hz=low, high_hz=high, order=order)
  step = max(1, win // 2)
  starts = _window_starts(n, win, step)
  idx = starts[:, None] + np.arange(win)[None, :]
  xw, yw = xf[idx], yf[idx]
  alpha = xw.std(axis=1) / np.maximum(yw.std(axis=1), _EPS)
  s = xw - alpha[:, None] * yw
  s -= s.mean(axis=1, keepdims=True)
  # Sine window evaluated at sample centres: a Hann window that never reaches
  # zero, so normalising by the summed weights is safe at the trace ends.
  taper = np.sin(np.pi * (np.arange(win) + 0.5) / win) ** 2
  return _finish(_overlap_add(s, starts, n, taper))


_POS_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


def pos(rgb: np.ndarray, fs: float) -> np.ndarray:
  """Wang 2017 (POS), Algorithm 1: per 1.6 s window (hop one frame) temporal
  normalisation, projection onto the plane orthogonal to the skin tone, alpha
  tuning h = S1 + (std S1 / std S2) S2, and overlap-add of the zero-mean h.

  The overlap-add is divided by the number of windows covering each frame, so
  the first and last 1.6 s are not attenuated (a pure scale elsewhere).
  """
  c = prepare_rgb(rgb)
  n = c.shape[0]
  win = _window_len(fs, n)
  windows = np.lib.stride_tricks.sliding_window_view(c, win, axis=0)  # [M, 3, win]
  cn = windows / np.maximum(windows.mean(axis=2, keepdims=True), _EPS)
  s = np.einsum("pc,mcw->mpw", _POS_PROJECTION, cn)  # [M, 2, win]
  alpha = s[:, 0].std(axis=1) / np.maximum(s[:, 1].std(axis=1), _EPS)
  h = s[:, 0] + alpha[:, None] * s[:, 1]
  h -= h.mean(axis=1, keepdims=True)
  starts = np.arange(windows.shape[0])
  return _finish(_overlap_add(h, starts, n, np.ones(win)))


def _orthogonal_complement_green(c: np.ndarray, direction: np.ndarray) -> np.ndarray:
  """Green row of (I - u u^T) C^T for a unit colour direction u."""
  u = direction / np.linalg.norm(direction)
  projector = np.eye(3) - np.outer(u, u)
  return (c @ projector.T)[:, 1]


def lgi(rgb: np.ndarray, fs: float) -> np.ndarray:
  """Pilz 2018 (LGI): the first left singular vector of the 3 x N RGB matrix spans the
  intensity/skin-tone direction that illumination changes move along; project it out."""
  del fs
  c = prepare_rgb(rgb)
  u, _, _ = np.linalg.svd(c.T, full_matrices=False)
  return _finish(_orthogonal_complement_green(c, u[:, 0]))


def pbv(
    rgb: np.ndarray,
    fs: float,
    *,
    signature: np.ndarray | None = None,
    low_hz: float = HR_BAND_HZ[0],
    high_hz: float = HR_BAND_HZ[1],
    order: int = 3,
) -> np.ndarray:
  """de Haan 2014 (PBV): P = Pbv^T Q^{-1} Cn / (Pbv^T Q^{-1} Pbv), Q = Cn Cn^T.

  Cn are the mean-normalised, zero-mean traces band-passed to the HR band (the
  pulse signature is defined on the pulsatile band; out-of-band illumination
  changes would otherwise dominate the channel std). Without a given
  `signature`, Pbv is the normalised per-channel std of Cn, as in the paper's
  data-driven variant.
  """
  c = prepare_rgb(rgb)
  cn = c / np.maximum(c.mean(axis=0), _EPS) - 1.0
  low, high = _band(fs, low_hz, high_hz)
  cn = sig.bandpass(cn, fs, low_hz=low, high_hz=high, order=order, axis=0)
  if signature is None:
    pbv_vec = cn.std(axis=0)
  else:
    pbv_vec = np.asarray(signature, dtype=np.float64)
    if pbv_vec.shape != (3,):
      raise ValueError(f"PBV signature must have shape (3,), got {pbv_vec.shape}")
  pbv_vec = pbv_vec / max(float(np.linalg.norm(pbv_vec)), _EPS)
  q = cn.T @ cn
  # A tiny ridge keeps Q invertible for degenerate (e.g. constant) channels.
  q += np.eye(3) * (np.trace(q) * 1e-9 + _EPS)
  w = np.linalg.solve(q, pbv_vec)
  return _finish(cn @ w / max(float(pbv_vec @ w), _EPS))


def omit(rgb: np.ndarray, fs: float) -> np.ndarray:
  """Casado 2023 (OMIT): QR decomposition of the colour matrix; the first orthonormal
  basis vector is the skin-tone direction and the pulse is read from the green row of
  the projection onto its orthogonal complement.

  The reference implementation decomposes the 3 x N matrix directly, which makes
  the first basis vector the colour of frame 0; here the temporal mean colour is
  placed as the first column, so one noisy first frame cannot set the projection.
  """
  del fs
  c = prepare_rgb(rgb)
  q, _ = np.linalg.qr(np.column_stack([c.mean(axis=0), c.T]))
  return _finish(_orthogonal_complement_green(c, q[:, 0]))


METHODS: dict[str, Method] = {
    "green": green,
    "ica": ica,
    "chrom": chrom,
    "pos": pos,
    "lgi": lgi,
    "pbv": pbv,
    "omit": omit,
}


def get_method(name: str) -> Method:
  """Looks up an unsupervised method by (case-insensitive) name."""
  key = str(name).strip().lower()
  if key not in METHODS:
    raise ValueError(f"unknown unsupervised rPPG method {name!r}; valid names: {sorted(METHODS)}")
  return METHODS[key]


def extract_bvp(name: str, rgb: np.ndarray, fs: float, **kwargs: Any) -> np.ndarray:
  """Runs method `name` on `rgb` [N, 3] at `fs` Hz; returns a zero-mean BVP [N]."""
  if not fs > 0:
    raise ValueError(f"fs must be > 0, got {fs}")
  return get_method(name)(rgb, fs, **kwargs)
