"""1-D physiological signal utilities shared by preprocessing, training and evaluation.

Everything here is plain NumPy/SciPy and computes in float64 for 1-D inputs, so the
evaluation convention of docs/EVALUATION.md ("The convention") is reproduced
exactly and independently of JAX:

1. integrate (cumsum) when signals are diff-normalised,
2. smoothness-priors detrending (Tarvainen et al. 2002), lambda = 100, solved as a
   banded system in O(N),
3. zero-phase Butterworth band-pass, order 1, [0.75, 2.5] Hz.

`postprocess` chains exactly these steps. The normalisations used by preprocessing
(`raw`, `standardized`, `diff_normalized`) live here too so that labels and frames
share one definition; they are looked up by name in `NORMALIZATIONS`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.signal

ArrayLike = npt.ArrayLike

# Added to the denominator of the frame-difference ratio so black pixels do not divide
# by zero (same role as the toolbox's 1e-7).
DIFF_EPS = 1e-7


def next_pow2(n: int) -> int:
  """Smallest power of two >= n (1 for n <= 1)."""
  n = int(n)
  if n <= 1:
    return 1
  return 1 << (n - 1).bit_length()


def _as_1d(x: ArrayLike, name: str = "x") -> np.ndarray:
  arr = np.asarray(x, dtype=np.float64)
  if arr.ndim != 1:
    arr = np.squeeze(arr)
    if arr.ndim != 1:
      raise ValueError(f"{name} must be 1-D, got shape {np.shape(x)}")
  return arr


def _float_dtype(arr: np.ndarray) -> np.dtype:
  """float64 for 1-D series; float32 (unless already float64) for frame arrays.

  Frame chunks are [N, H, W, C]; keeping them in float32 halves memory, which is what
  the "never a whole video as float64" rule asks for.
  """
  if arr.ndim <= 1 or arr.dtype == np.float64:
    return np.dtype(np.float64)
  return np.dtype(np.float32)


def detrend(x: ArrayLike, *, lam: float = 100.0, axis: int = 0) -> np.ndarray:
  """Smoothness-priors detrending (Tarvainen, Ranta-aho & Karjalainen 2002).

  Returns z - (I + lam^2 D2^T D2)^{-1} z where D2 is the (N-2) x N second-difference
  operator. The matrix is symmetric positive-definite and pentadiagonal, so it is
  solved with `scipy.linalg.solveh_banded` in O(N) time and memory (no dense inverse).

  Works along `axis` for N-D input (each column detrended independently). For N < 3
  there is no second difference, the trend interpolates the data exactly and the
  result is all zeros.
  """
  arr = np.asarray(x, dtype=np.float64)
  if lam < 0:
    raise ValueError(f"detrend lambda must be >= 0, got {lam}")
  if arr.ndim == 0:
    raise ValueError("detrend needs at least a 1-D array")
  moved = np.moveaxis(arr, axis, 0)
  n = moved.shape[0]
  if n < 3:
    return np.zeros_like(arr)
  # Diagonals of D2^T D2: each row of D2 is [1, -2, 1] at offsets (i, i+1, i+2).
  main = np.full(n, 6.0)
  main[[0, -1]] = 1.0
  main[[1, -2]] = 5.0 if n > 3 else 4.0
  off1 = np.full(n - 1, -4.0)
  off1[[0, -1]] = -2.0
  off2 = np.ones(n - 2)
  lam2 = float(lam) ** 2
  # Upper banded storage for solveh_banded: row 2 is the main diagonal.
  ab = np.zeros((3, n))
  ab[2] = 1.0 + lam2 * main
  ab[1, 1:] = lam2 * off1
  ab[0, 2:] = lam2 * off2
  flat = moved.reshape(n, -1)
  trend = scipy.linalg.solveh_banded(ab, flat, check_finite=True)
  out = (flat - trend).reshape(moved.shape)
  return np.moveaxis(out, 0, axis)


def _validate_band(fs: float, low_hz: float, high_hz: float) -> None:
  if not fs > 0:
    raise ValueError(f"sampling rate fs must be > 0, got {fs}")
  nyquist = fs / 2.0
  if not 0.0 < low_hz < high_hz < nyquist:
    raise ValueError(
        "band edges must satisfy 0 < low_hz < high_hz < fs/2; got "
        f"low_hz={low_hz}, high_hz={high_hz}, fs/2={nyquist}"
    )


def bandpass(
    x: ArrayLike,
    fs: float,
    *,
    low_hz: float = 0.75,
    high_hz: float = 2.5,
    order: int = 1,
    axis: int = 0,
) -> np.ndarray:
  """Zero-phase Butterworth band-pass (forward-backward, second-order sections).

  The effective magnitude response is the square of the order-`order` design, as with
  `scipy.signal.filtfilt`. Signals shorter than the default edge padding get a
  padding of N-1 samples instead of an error.
  """
  _validate_band(fs, low_hz, high_hz)
  if int(order) < 1:
    raise ValueError(f"filter order must be >= 1, got {order}")
  arr = np.asarray(x, dtype=np.float64)
  if arr.ndim == 0:
    raise ValueError("bandpass needs at least a 1-D array")
  sos = scipy.signal.butter(int(order), [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
  n = arr.shape[axis]
  if n < 2:
    return arr.copy()
  # Same default as scipy.signal.filtfilt for b, a: 3 * max(len(a), len(b)).
  default_pad = 3 * (2 * int(order) + 1)
  return scipy.signal.sosfiltfilt(sos, arr, axis=axis, padlen=min(default_pad, n - 1))


def standardize(x: ArrayLike, *, axis: int | None = 0) -> np.ndarray:
  """Z-score: (x - mean) / std along `axis` (None: over all elements, as the toolbox
  does for frame chunks). Constant input maps to zeros rather than NaN."""
  arr = np.asarray(x)
  arr = arr.astype(_float_dtype(arr), copy=False)
  mean = np.mean(arr, axis=axis, keepdims=axis is not None)
  std = np.std(arr, axis=axis, keepdims=axis is not None)
  safe = np.where(std > 0, std, 1.0)
  out = (arr - mean) / safe
  return np.where(std > 0, out, 0.0).astype(arr.dtype, copy=False)


def diff_normalize(x: ArrayLike, *, axis: int = 0) -> np.ndarray:
  """Normalised frame difference (c[t+1] - c[t]) / (c[t+1] + c[t] + eps), then
  divided by its standard deviation over all elements.

  Output length along `axis` is N-1 (no padding: the first difference has no
  predecessor). Works for 1-D series (float64) and frame chunks [N, H, W, C]
  (float32 unless given float64). NaNs (0/0 never happens with eps, but inputs may
  carry NaN) are set to 0.
  """
  arr = np.asarray(x)
  dtype = _float_dtype(arr)
  arr = arr.astype(dtype, copy=False)
  if arr.ndim == 0 or arr.shape[axis] < 2:
    raise ValueError(f"diff_normalize needs >= 2 samples along axis {axis}, got shape {arr.shape}")
  head = np.take(arr, np.arange(1, arr.shape[axis]), axis=axis)
  tail = np.take(arr, np.arange(0, arr.shape[axis] - 1), axis=axis)
  d = (head - tail) / (head + tail + dtype.type(DIFF_EPS))
  d = np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
  std = np.std(d, dtype=np.float64)
  if std > 0:
    d = d / dtype.type(std)
  return d.astype(dtype, copy=False)


def diff_normalize_label(x: ArrayLike) -> np.ndarray:
  """First difference of a label series divided by its std (length N-1).

  Labels (PPG) may cross zero, so the ratio form of `diff_normalize` does not apply.
  """
  arr = _as_1d(x)
  if arr.shape[0] < 2:
    raise ValueError("diff_normalize_label needs >= 2 samples")
  d = np.diff(arr)
  std = np.std(d)
  d = d / std if std > 0 else d
  return np.nan_to_num(d, nan=0.0)


def integrate(x: ArrayLike) -> np.ndarray:
  """Cumulative sum: undoes a first difference up to an additive constant."""
  return np.cumsum(_as_1d(x))


def _raw(x: ArrayLike, *, axis: int = 0, label: bool = False) -> np.ndarray:
  del axis, label
  arr = np.asarray(x)
  return arr.astype(_float_dtype(arr), copy=False)


def _standardized(x: ArrayLike, *, axis: int = 0, label: bool = False) -> np.ndarray:
  # Frames: z-score over all elements (toolbox); labels: over time.
  return standardize(x, axis=axis if label else None)


def _diff_normalized(x: ArrayLike, *, axis: int = 0, label: bool = False) -> np.ndarray:
  if label:
    return diff_normalize_label(x)
  return diff_normalize(x, axis=axis)


NORMALIZATIONS: dict[str, Callable[..., np.ndarray]] = {
    "raw": _raw,
    "standardized": _standardized,
    "diff_normalized": _diff_normalized,
}


def normalize(x: ArrayLike, mode: str, *, axis: int = 0, label: bool = False) -> np.ndarray:
  """Apply the normalisation `mode` (a key of NORMALIZATIONS).

  `label=True` selects the label variant: `standardized` z-scores along `axis` and
  `diff_normalized` uses `diff_normalize_label`. For frames, `standardized` z-scores
  over all elements of the chunk. `diff_normalized` shortens the time axis by one.
  """
  try:
    fn = NORMALIZATIONS[mode]
  except KeyError:
    raise ValueError(
        f"unknown normalisation {mode!r}; expected one of " f"{sorted(NORMALIZATIONS)}"
    ) from None
  return fn(x, axis=axis, label=label)


def resample_by_timestamps(t_src: ArrayLike, x_src: ArrayLike, t_dst: ArrayLike) -> np.ndarray:
  """Linear interpolation of samples x_src (taken at t_src) onto times t_dst.

  t_src must be strictly increasing (timestamps may be non-uniform). x_src may be
  N-D with time on axis 0. Targets outside [t_src[0], t_src[-1]] take the edge value
  (no extrapolation), like `np.interp`.
  """
  ts = _as_1d(t_src, "t_src")
  td = np.asarray(t_dst, dtype=np.float64).reshape(-1)
  xs = np.asarray(x_src)
  xs = xs.astype(np.float64 if xs.ndim <= 1 else _float_dtype(xs), copy=False)
  if xs.shape[0] != ts.shape[0]:
    raise ValueError(f"t_src has {ts.shape[0]} samples but x_src has {xs.shape[0]} along axis 0")
  if ts.shape[0] == 0:
    raise ValueError("cannot resample an empty signal")
  if not (np.all(np.isfinite(ts)) and np.all(np.isfinite(td))):
    raise ValueError("timestamps must be finite")
  if ts.shape[0] == 1:
    return np.repeat(xs[:1], td.shape[0], axis=0)
  steps = np.diff(ts)
  if np.any(steps <= 0):
    bad = int(np.argmax(steps <= 0))
    raise ValueError(
        "t_src must be strictly increasing; t_src[%d]=%r >= t_src[%d]=%r"
        % (bad, ts[bad], bad + 1, ts[bad + 1])
    )
  tc = np.clip(td, ts[0], ts[-1])
  hi = np.clip(np.searchsorted(ts, tc, side="right"), 1, ts.shape[0] - 1)
  lo = hi - 1
  w = (tc - ts[lo]) / (ts[hi] - ts[lo])
  w = w.reshape((-1,) + (1,) * (xs.ndim - 1)).astype(xs.dtype)
  return xs[lo] * (1 - w) + xs[hi] * w


def uniform_times(t_start: float, t_end: float, fps: float) -> np.ndarray:
  """Times t_start + k / fps for k = 0, 1, ... up to and including t_end (within a
  1e-9 relative tolerance of a sample period)."""
  if not fps > 0:
    raise ValueError(f"fps must be > 0, got {fps}")
  if t_end < t_start:
    raise ValueError(f"t_end ({t_end}) must be >= t_start ({t_start})")
  count = int(np.floor((t_end - t_start) * fps + 1e-9)) + 1
  return t_start + np.arange(count, dtype=np.float64) / fps


def postprocess(
    x: ArrayLike,
    fs: float,
    *,
    diff_normalized: bool = False,
    detrend_lambda: float = 100.0,
    low_hz: float = 0.75,
    high_hz: float = 2.5,
    order: int = 1,
) -> np.ndarray:
  """The evaluation convention: integrate if diff-normalised, detrend, band-pass."""
  sig = _as_1d(x)
  if diff_normalized:
    sig = integrate(sig)
  sig = detrend(sig, lam=detrend_lambda)
  return bandpass(sig, fs, low_hz=low_hz, high_hz=high_hz, order=order)
