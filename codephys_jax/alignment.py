"""Raw item -> example: label validation, clock repair and alignment to the frames.

`build_example` runs the face pipeline on one raw video and puts its labels on
the frames by the one clock they share (`RawLabels`):

* Per-frame labels (UBFC-rPPG, synthetic): sample i belongs to decoded frame i
  and takes that frame's timestamp; a logged label clock is never used as a
  second time axis against the decoder's. A decoded-frame count that differs
  from the sample count by at most `trim_bound(n)` (2 frames or 0.5 %) is
  trimmed to the common length (at the end: sample i stays with frame i).
* Separately sampled labels (PURE, VIPL-HR, COHFACE) keep their timestamps on
  the frames' clock. Repeated or backward label (or VIPL frame) timestamps are
  repaired by `repair_timestamps` (keep the first of a repeat, drop what steps
  back); decoded frames outside the labels' time span at either end are
  trimmed within the same bound.

Every trim and repair is logged and stored in the example (`ALIGNMENT_FIELDS`:
`trimmed_frames`, `trimmed_labels`, `repaired_timestamps`); the builder lists
them per item in `builder.info.metadata["alignment"]` and counts the items
(`alignment_counts`: `trimmed`, `repaired`) in `item_counts` and
`split_counts`. Beyond the bound, or a clock that cannot be repaired, is a
`PreparationError` naming the item.

No TFDS here: the builders (`rppg_builder`), the preparation workers
(`preparation`) and the robustness study (`robustness`) all call this module.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping

import numpy as np

from codephys_jax import hr as hr_lib
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import signal as sig
from codephys_jax import video as video_lib


class PreparationError(ValueError):
  """A raw item could not be turned into an example; the message names the item."""


@dataclasses.dataclass(frozen=True)
class RawLabels:
  """Ground-truth PPG of one raw item and the clock that puts it on the frames.

  Two kinds (see the module docstring):

  * ``per_frame=True`` (UBFC-rPPG, synthetic): sample i belongs to decoded
    frame i. The labels ride on the frames' own timestamps; ``times`` is kept
    for reference only (e.g. UBFC's logging clock) and is never used to align.
  * ``per_frame=False`` (PURE, VIPL-HR, COHFACE): separately sampled labels
    with their own timestamps in seconds on the frames' clock; repeated or
    backward timestamps are repaired by `repair_timestamps`.
  """

  times: np.ndarray | None
  ppg: np.ndarray
  per_frame: bool = False



def reference_hr(ppg: np.ndarray, fps: float) -> float:
  """Whole-video reference HR (standard convention) stored with each example."""
  filtered = sig.postprocess(ppg, fps)
  return float(hr_lib.estimate_hr(filtered, fps, method="fft"))


# Frame/label count slack accepted (and trimmed) per item: this many frames,
# or this fraction of the longer of the two, whichever is larger. Real copies
# differ by one decoded frame (UBFC re-encodes); more is a truncated or foreign file.
MAX_TRIM_FRAMES = 2
MAX_TRIM_FRACTION = 0.005
# Timestamps dropped by `repair_timestamps` beyond this fraction of the samples
# mean a broken clock, not logging jitter: the item is an error.
MAX_REPAIR_FRACTION = 0.05
# Example fields that account for alignment (int32 scalars, see `rppg_builder.features`).
ALIGNMENT_FIELDS = ("trimmed_frames", "trimmed_labels", "repaired_timestamps")


def trim_bound(length: int) -> int:
  """Largest frame/label count difference trimmed (not an error) for `length` samples."""
  return max(MAX_TRIM_FRAMES, int(MAX_TRIM_FRACTION * length))


def repair_timestamps(what: str, times: np.ndarray) -> tuple[np.ndarray, int]:
  """Make a logged clock strictly increasing by dropping samples; (keep mask, dropped).

  The rule: walk the samples in file order and keep a sample only if its time
  is later than every sample kept before it. An exact repeat keeps its first
  sample; a step backwards drops the samples until the clock passes the last
  kept time again. The values of kept samples are untouched (nothing is
  interpolated or re-timed).

  Raises:
    PreparationError (naming `what`): non-finite times, fewer than 2 samples
      left, or more than `MAX_REPAIR_FRACTION` of them dropped (a broken clock).
  """
  t = np.asarray(times, dtype=np.float64).reshape(-1)
  if not np.all(np.isfinite(t)):
    raise PreparationError(f"{what}: {int(np.sum(~np.isfinite(t)))} non-finite timestamps")
  keep = np.ones(t.shape, dtype=bool)
  if t.size > 1:
    running = np.maximum.accumulate(t)
    keep[1:] = t[1:] > running[:-1]
  dropped = int(t.size - keep.sum())
  if keep.sum() < 2 or dropped > MAX_REPAIR_FRACTION * t.size:
    raise PreparationError(
        f"{what}: timestamps cannot be repaired: {dropped} of {t.size} samples repeat or "
        f"go backwards (at most {MAX_REPAIR_FRACTION:.0%} are dropped)"
    )
  return keep, dropped


def validate_labels(item_key: str, labels: RawLabels) -> tuple[RawLabels, int]:
  """Check the PPG and repair separately sampled label clocks; (labels, repaired count).

  Per-frame labels need no clock (their `times` are not checked). Otherwise
  repeated or backward timestamps are dropped by `repair_timestamps`.

  Raises:
    PreparationError naming the item when the labels are unusable.
  """
  ppg = np.asarray(labels.ppg, dtype=np.float64)
  if ppg.ndim != 1 or ppg.size < 2:
    raise PreparationError(f"{item_key}: PPG label has {ppg.size} samples; need >= 2")
  if not np.all(np.isfinite(ppg)):
    raise PreparationError(
        f"{item_key}: PPG label contains {int(np.sum(~np.isfinite(ppg)))} NaN/inf values"
    )
  if np.ptp(ppg) == 0:
    raise PreparationError(f"{item_key}: PPG label is constant")
  if labels.per_frame:
    return labels, 0
  times = np.asarray(labels.times, dtype=np.float64)
  if times.shape != ppg.shape:
    raise PreparationError(f"{item_key}: {ppg.size} PPG samples but {times.size} label timestamps")
  keep, dropped = repair_timestamps(f"{item_key}: label", times)
  if dropped:
    logging.info(
        "%s: repaired the label clock: dropped %d of %d samples with repeated or "
        "backward timestamps",
        item_key,
        dropped,
        times.size,
    )
  return RawLabels(times=times[keep], ppg=ppg[keep], per_frame=False), dropped


def _source_counts(source: video_lib.FrameSource) -> dict[str, int]:
  # Sources that re-time frames (VIPL-HR's time.txt) report what they dropped.
  counts = getattr(source, "alignment_counts", None) or {}
  return {k: int(counts.get(k, 0)) for k in ("trimmed_frames", "repaired_timestamps")}


def build_example(
    item_key: str,
    subject_id: str,
    source: video_lib.FrameSource,
    labels: RawLabels,
    cfg: preprocess_lib.PreprocessConfig,
) -> dict[str, Any]:
  """Face pipeline + label alignment for one video, with errors naming the item.

  Alignment (see the module docstring): per-frame labels take the decoded
  frames' own timestamps (sample i at frame i's time); separately sampled
  labels keep their (repaired) timestamps. Decoded frames without a label at
  either end are trimmed within `trim_bound`, per-frame labels without a frame
  likewise; the counts are stored in the example (`ALIGNMENT_FIELDS`).
  """
  labels, repaired = validate_labels(item_key, labels)
  try:
    video = preprocess_lib.preprocess_video(source, cfg)
  except video_lib.VideoError as e:
    raise PreparationError(f"{item_key}: {e}") from e
  from_source = _source_counts(source)
  src_t = np.asarray(video.source_timestamps, dtype=np.float64)
  ppg_in = np.asarray(labels.ppg, dtype=np.float64)
  n_src = len(src_t)
  trimmed_labels = 0
  if labels.per_frame:
    n = min(n_src, len(ppg_in))
    if abs(n_src - len(ppg_in)) > trim_bound(max(n_src, len(ppg_in))):
      raise PreparationError(
          f"{item_key}: {len(ppg_in)} PPG samples but the video has {n_src} frames "
          f"(one sample per frame; at most {trim_bound(max(n_src, len(ppg_in)))} "
          "are trimmed)"
      )
    label_t, label_v = src_t[:n], ppg_in[:n]
    first, last = 0, n - 1
    trimmed_labels = len(ppg_in) - n
  else:
    label_t, label_v = np.asarray(labels.times, dtype=np.float64), ppg_in
    # A frame counts as covered within one output period of the labels' span
    # (the edge label value is held there, see `preprocess.align_labels`).
    tol = 1.0 / video.fps
    covered = np.flatnonzero((src_t >= label_t[0] - tol) & (src_t <= label_t[-1] + tol))
    uncovered = n_src - covered.size
    if covered.size < 2 or uncovered > trim_bound(n_src):
      raise PreparationError(
          f"{item_key}: labels span {label_t[0]:.3f}..{label_t[-1]:.3f} s but "
          f"{uncovered} of the {n_src} frames ({src_t[0]:.3f}..{src_t[-1]:.3f} s) lie "
          f"outside it (at most {trim_bound(n_src)} are trimmed)"
      )
    first, last = int(covered[0]), int(covered[-1])
  trimmed_frames = n_src - (last - first + 1)
  # Output frames that stand for trimmed source frames go too.
  eps = preprocess_lib.time_tolerance(video.fps)
  keep = (video.timestamps >= src_t[first] - eps) & (video.timestamps <= src_t[last] + eps)
  if int(keep.sum()) < 2:
    raise PreparationError(f"{item_key}: only {int(keep.sum())} frames after preprocessing")
  try:
    ppg = preprocess_lib.align_labels(label_t, label_v, video.timestamps[keep])
  except ValueError as e:
    raise PreparationError(f"{item_key}: {e}") from e
  ppg = ppg.astype(np.float32)
  counts = {
      "trimmed_frames": trimmed_frames + from_source["trimmed_frames"],
      "trimmed_labels": trimmed_labels,
      "repaired_timestamps": repaired + from_source["repaired_timestamps"],
  }
  if any(counts.values()):
    logging.warning("%s: aligned with %s", item_key, counts)
  return {
      "video_id": item_key,
      "subject_id": subject_id,
      "frames": video.frames[keep],
      "rgb": video.rgb[keep].astype(np.float32),
      "valid": video.valid[keep].astype(np.uint8),
      "ppg": ppg,
      "timestamps": video.timestamps[keep].astype(np.float64),
      "fps": np.float32(video.fps),
      "hr": np.float32(reference_hr(ppg, video.fps)),
      **{k: np.int32(v) for k, v in counts.items()},
  }



def alignment_counts(aligned: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
  """Item counts of the alignment fixes: {"trimmed": items, "repaired": items}."""
  return {
      "trimmed": sum(bool(c["trimmed_frames"] or c["trimmed_labels"]) for c in aligned.values()),
      "repaired": sum(bool(c["repaired_timestamps"]) for c in aligned.values()),
  }

