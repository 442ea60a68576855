"""Heart rate from a user's own video: the library behind predict.py.

One streaming preprocessing pass (face detection and tracking, crops, skin RGB;
:mod:`codephys_jax.preprocess`), then a method turns it into an rPPG waveform.
``--method`` is resolved by :func:`codephys_jax.methods.resolve`:

* an unsupervised method by name (``pos``, ``chrom``, ...) on the RGB trace;
* a training workdir (a stage directory with ``checkpoints/``, or the top
  workdir, where ``codephys/`` is preferred to ``physnet/``) on the face crops,
  prepared with the preprocessing settings the model was trained with;
* an exported model file (``export.py`` output with its ``.json`` sidecar) on
  face crops of the size and frame rate the sidecar records.

HR follows the evaluation convention's post-processing (detrend, band-pass) and
:func:`codephys_jax.hr.robust_hr`: the whole recording's SQI-weighted HR and,
per sliding window, HR with its quality (SQI) and reliability flag.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tqdm

from codephys_jax import hr as hr_lib
from codephys_jax import jsonio
from codephys_jax import methods
from codephys_jax import preprocess
from codephys_jax import signal as sig
from codephys_jax.video import FrameSource, VideoError

# Fewer than this many seconds hold too few beats at the lowest HR of the band
# (45 bpm: under four) for a spectral estimate.
MIN_SECONDS = 5.0
# Below this fraction of frames with a detected face, the video is likely a face
# or skin crop already, and the whole frame (roi='full_frame') is the better ROI.
MIN_FACE_FRACTION = 0.5
FULL_FRAME_HINT = "if the video is already a face or skin crop, use --roi=full_frame"


class PredictError(VideoError):
  """The input cannot give a heart rate (too short, no usable face signal)."""


@dataclasses.dataclass
class Prediction:
  """Result of :func:`predict`.

  Attributes:
    method: what produced the waveform (method name, workdir or model file).
    source: the video path or ``camera:<index>``.
    fps: sampling rate of ``rppg``.
    time_s: float64 [N], seconds from the first frame.
    rppg: float64 [N], post-processed (detrended, band-passed) waveform.
    hr_bpm: whole-recording HR (robust estimator).
    quality: its SQI (0..1); ``reliable`` is ``quality >= 0.35``.
    reliable: whether the whole-recording HR passes the quality threshold.
    hr_fft_bpm: the standard whole-recording FFT HR (evaluation convention).
    window_time_s, window_hr_bpm, window_quality, window_reliable: per window
      (centre time, HR, SQI, flag).
    valid_fraction: fraction of output frames with a usable ROI (a face box,
      carried over between detections, or the whole frame).
    num_source_frames: frames decoded.
    roi: 'face' or 'full_frame' (``preprocess.roi``).
    face_fraction: fraction of source frames in which the detector found a
      face (None for ``roi='full_frame'``).
    warnings: plain-language problems with the input (e.g. few faces detected).
  """

  method: str
  source: str
  fps: float
  time_s: np.ndarray
  rppg: np.ndarray
  hr_bpm: float
  quality: float
  reliable: bool
  hr_fft_bpm: float
  window_time_s: np.ndarray
  window_hr_bpm: np.ndarray
  window_quality: np.ndarray
  window_reliable: np.ndarray
  valid_fraction: float
  num_source_frames: int
  roi: str = "face"
  face_fraction: float | None = None
  warnings: tuple[str, ...] = ()
  spectrum_hz: np.ndarray = dataclasses.field(repr=False, default_factory=lambda: np.zeros(0))
  spectrum_power: np.ndarray = dataclasses.field(repr=False, default_factory=lambda: np.zeros(0))


class _Progress(FrameSource):
  """Passes a source through, advancing a progress bar per frame."""

  def __init__(self, source: FrameSource, *, enabled: bool):
    self._src = source
    self.path, self.fps, self.num_frames = source.path, source.fps, source.num_frames
    self._enabled = enabled

  @property
  def size(self) -> tuple[int, int]:
    return self._src.size

  def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
    with tqdm.tqdm(
        total=self.num_frames,
        desc=f"reading {os.path.basename(self.path)}",
        unit="frame",
        disable=not self._enabled,
    ) as bar:
      for item in self._src:
        bar.update(1)
        yield item


def _windows(x: np.ndarray, fps: float, window_s: float, step_s: float):
  n, win = len(x), int(round(window_s * fps))
  if n <= win:
    return [(0, n)]
  step = max(1, int(round(step_s * fps)))
  starts = list(range(0, n - win + 1, step))
  if starts[-1] + win < n:
    starts.append(n - win)
  return [(s, s + win) for s in starts]


# What predict.py runs when no method is named: the shipped synthetic-trained model,
# which beats POS on the real development videos (its model card has the numbers).
DEFAULT_METHOD = "codephys-synthetic"


def predict(
    source: FrameSource,
    method: str = DEFAULT_METHOD,
    *,
    preprocess_overrides: dict[str, Any] | None = None,
    window_s: float = 10.0,
    step_s: float = 1.0,
    low_hz: float = 0.75,
    high_hz: float = 2.5,
    min_seconds: float = MIN_SECONDS,
    progress: bool = True,
) -> Prediction:
  """Runs preprocessing, the method and the HR estimators on one video.

  Raises:
    VideoError: unreadable input; :class:`~codephys_jax.face.NoFaceError` when
      no face is found; :class:`PredictError` when the video is shorter than
      ``min_seconds`` or has too few frames with a face.
    ValueError: unknown method.
  """
  resolved = methods.resolve(method)
  fields = {f.name for f in dataclasses.fields(preprocess.PreprocessConfig)}
  cfg_kwargs = {k: v for k, v in resolved.preprocess.items() if k in fields}
  cfg_kwargs.update(preprocess_overrides or {})
  cfg = preprocess.PreprocessConfig(**cfg_kwargs)
  video = preprocess.preprocess_video(_Progress(source, enabled=progress), cfg)
  duration = len(video) / video.fps
  if duration < min_seconds:
    raise PredictError(
        source.path,
        f"video is {duration:.1f} s long; at least "
        f"{min_seconds:.0f} s are needed for a heart rate",
    )
  valid = float(video.valid.mean())
  if valid < 0.5:
    hint = f"; {FULL_FRAME_HINT}" if cfg.roi != "full_frame" else ""
    raise PredictError(
        source.path,
        f"a face ROI was usable in only {100 * valid:.0f}% of the "
        f"frames (face lost or too little skin){hint}",
    )
  warnings = []
  face_fraction = video.detected_fraction
  if face_fraction is not None and face_fraction < MIN_FACE_FRACTION:
    warnings.append(
        f"a face was detected in only {100 * face_fraction:.0f}% of the frames; "
        f"{FULL_FRAME_HINT}"
    )
  wave = np.asarray(
      resolved.predictor(
          {
              "frames": video.frames,
              "rgb": video.rgb,
              "fps": video.fps,
              "video_id": video.source_path,
          }
      ),
      np.float64,
  )
  rppg = sig.postprocess(wave, video.fps, low_hz=low_hz, high_hz=high_hz)
  whole = hr_lib.robust_hr(rppg, video.fps, low_hz=low_hz, high_hz=high_hz, window_s=window_s)
  hr_fft = hr_lib.hr_fft(rppg, video.fps, low_hz=low_hz, high_hz=high_hz)
  rows = []
  for a, b in _windows(rppg, video.fps, window_s, step_s):
    r = hr_lib.robust_hr(rppg[a:b], video.fps, low_hz=low_hz, high_hz=high_hz, window_s=window_s)
    rows.append(((a + b) / 2 / video.fps, r.hr, r.quality, r.reliable))
  nfft = sig.next_pow2(len(rppg)) * 2
  freqs = np.fft.rfftfreq(nfft, 1.0 / video.fps)
  power = np.abs(np.fft.rfft(rppg * np.hanning(len(rppg)), nfft)) ** 2
  keep = freqs <= min(2 * high_hz, video.fps / 2)
  return Prediction(
      method=resolved.description,
      source=source.path,
      fps=video.fps,
      time_s=video.timestamps - video.timestamps[0],
      rppg=rppg,
      hr_bpm=float(whole.hr),
      quality=float(whole.quality),
      reliable=bool(whole.reliable),
      hr_fft_bpm=float(hr_fft),
      window_time_s=np.array([r[0] for r in rows]),
      window_hr_bpm=np.array([r[1] for r in rows]),
      window_quality=np.array([r[2] for r in rows]),
      window_reliable=np.array([r[3] for r in rows], bool),
      valid_fraction=valid,
      num_source_frames=video.num_source_frames,
      roi=cfg.roi,
      face_fraction=face_fraction,
      warnings=tuple(warnings),
      spectrum_hz=freqs[keep],
      spectrum_power=power[keep],
  )


def _write_csv(path: Path, header: list[str], rows) -> None:
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  os.replace(tmp, path)


def plot(pred: Prediction, path: str | os.PathLike) -> str:
  """Waveform, HR over time (quality-coloured) and spectrum in one PNG."""
  from codephys_jax import plots  # matplotlib only when a figure is drawn

  plt = plots.plt
  fig, axes = plt.subplots(3, 1, figsize=(9, 8))
  ax = axes[0]
  ax.plot(pred.time_s, pred.rppg, lw=0.8)
  ax.set(
      xlabel="time [s]",
      ylabel="rPPG (a.u.)",
      title=f"{os.path.basename(pred.source)}: "
      f"{pred.hr_bpm:.1f} bpm ({pred.method}, quality {pred.quality:.2f})",
  )
  ax = axes[1]
  ok = pred.window_reliable
  ax.plot(pred.window_time_s, pred.window_hr_bpm, color="0.6", lw=1)
  ax.scatter(pred.window_time_s[ok], pred.window_hr_bpm[ok], s=14, label="reliable")
  ax.scatter(
      pred.window_time_s[~ok],
      pred.window_hr_bpm[~ok],
      s=14,
      marker="x",
      color="r",
      label="low quality",
  )
  ax.axhline(pred.hr_bpm, color="k", ls="--", lw=1, label=f"whole recording {pred.hr_bpm:.1f}")
  ax.set(xlabel="window centre [s]", ylabel="HR [bpm]")
  ax.legend(loc="best", fontsize=8)
  ax = axes[2]
  ax.plot(pred.spectrum_hz * 60, pred.spectrum_power / max(pred.spectrum_power.max(), 1e-300))
  ax.axvline(pred.hr_bpm, color="k", ls="--", lw=1)
  ax.set(xlabel="frequency [bpm]", ylabel="power (normalised)")
  fig.tight_layout()
  return plots._save(fig, os.fspath(path))


def write_outputs(pred: Prediction, out_dir: str | os.PathLike) -> dict[str, str]:
  """Writes summary.json, hr.csv, waveform.csv and predict.png (each atomically)."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  _write_csv(
      out / "waveform.csv",
      ["time_s", "rppg"],
      ((f"{t:.4f}", f"{x:.6g}") for t, x in zip(pred.time_s, pred.rppg)),
  )
  _write_csv(
      out / "hr.csv",
      ["time_s", "hr_bpm", "quality", "reliable"],
      (
          (f"{t:.2f}", f"{h:.2f}", f"{q:.3f}", int(r))
          for t, h, q, r in zip(
              pred.window_time_s, pred.window_hr_bpm, pred.window_quality, pred.window_reliable
          )
      ),
  )
  plot(pred, out / "predict.png")
  summary = {
      "hr_bpm": pred.hr_bpm,
      "quality": pred.quality,
      "reliable": pred.reliable,
      "hr_fft_bpm": pred.hr_fft_bpm,
      "method": pred.method,
      "video": pred.source,
      "fps": pred.fps,
      "duration_s": len(pred.rppg) / pred.fps,
      "num_source_frames": pred.num_source_frames,
      "roi": pred.roi,
      # Frames where the detector found a face (null for roi=full_frame) and
      # frames with a usable ROI (a tracked box is carried over between detections).
      "face_fraction": pred.face_fraction,
      "roi_fraction": pred.valid_fraction,
      "num_windows": int(len(pred.window_hr_bpm)),
      "warnings": list(pred.warnings),
  }
  # The summary last: its presence means the other files are complete.
  jsonio.write_json(out / "summary.json", summary)
  return {k: str(out / k) for k in ("summary.json", "hr.csv", "waveform.csv", "predict.png")}
