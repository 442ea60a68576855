"""The error floor of the evaluation convention for a clip model: the reference
PPG itself, passed through the same clip inference a model's output takes, and
scored against the reference.

  ./run.sh python benchmarks/reference_floor.py --config=configs/ubfc_cpu.py \
      DIR [DIR ...] [--markdown=FILE]

Each DIR is a `benchmarks/crossval.py` workdir or an `eval.py` output
directory; every `signals.npz` below it is read for its reference signals (one
per video; all methods of a run share them).

A clip model emits one waveform per clip of `config.clip_length` frames, and
`clips.predict_video` blends them with `clips.overlap_add`, which standardises
each clip. Models trained with scale-free losses (negative Pearson, the
codebook's distillation) carry no amplitude from clip to clip either. So the
best such a model can emit is the reference with its amplitude made equal
across clips. When a video's heart rate drifts and the contact PPG is strongest
while the rate is away from where it spends most of the time, the reference's
whole-video FFT peak follows the strong part, and a perfect scale-free tracker
reads the other. Two copies are scored:

- `clip copy`: the reference cut into clips at the inference hop
  (`clip_length // 2`), each standardised and blended by `overlap_add`; this
  is what a model that reproduced every clip's reference waveform exactly
  would be scored on;
- `constant amplitude`: cos of the analytic-signal phase of the band-passed
  reference, which keeps every beat and drops all amplitude.

Both are scored with `eval_lib.score` under the config's `eval` convention,
the same path every method's predictions take. The pooled MAE of the clip
copy is the floor below which no scale-free clip model can go on those videos.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Sequence

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np
import scipy.signal

from codephys_jax import clips
from codephys_jax import eval_lib
from codephys_jax import metrics as metrics_lib
from codephys_jax import signal as sig


def read_references(dirs: Sequence[str]) -> list[tuple[str, np.ndarray, float]]:
  """(video_id, reference, fps) of every video in the signals files below `dirs`."""
  refs: dict[str, tuple[np.ndarray, float]] = {}
  for d in dirs:
    paths = sorted(glob.glob(os.path.join(d, "**", eval_lib.SIGNALS_FILE), recursive=True))
    if not paths:
      raise FileNotFoundError(f"{d}: no {eval_lib.SIGNALS_FILE} below it")
    for path in paths:
      for vid, _, ref, fps in eval_lib.read_signals(path):
        if vid in refs:
          if len(refs[vid][0]) != len(ref) or not np.allclose(refs[vid][0], ref, atol=1e-5):
            raise ValueError(f"{path}: reference of {vid} differs from the one read before")
        else:
          refs[vid] = (ref, fps)
  return [(v, *refs[v]) for v in sorted(refs, key=_natural_key)]


def _natural_key(video_id: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", video_id)]


def clip_copy(ref: np.ndarray, clip_length: int) -> np.ndarray:
  """The reference as a perfect clip model would emit it: `predict_video`'s clips
  (hop clip_length // 2), each replaced by the reference over its frames."""
  ref = np.asarray(ref, np.float64)
  return clips.predict_video(ref, lambda batch: batch, clip_length=clip_length)


def constant_amplitude_copy(ref: np.ndarray, fps: float, eval_cfg) -> np.ndarray:
  """cos of the phase of the reference, post-processed as the convention does:
  every beat, no amplitude."""
  band = sig.postprocess(
      ref,
      fps,
      detrend_lambda=eval_cfg.detrend_lambda,
      low_hz=eval_cfg.low_hz,
      high_hz=eval_cfg.high_hz,
  )
  return np.cos(np.angle(scipy.signal.hilbert(band)))


def floor_rows(refs, config) -> tuple[list[dict], dict[str, float]]:
  """Per video: reference HR, its half-power range and each copy's HR; and the
  pooled MAE of each copy."""
  copies = {
      "clip copy": [(v, clip_copy(r, config.clip_length), r, fps) for v, r, fps in refs],
      "constant amplitude": [
          (v, constant_amplitude_copy(r, fps, config.eval), r, fps) for v, r, fps in refs
      ],
  }
  rows = {v: {"video_id": v} for v, _, _ in refs}
  pooled = {}
  for name, results in copies.items():
    scored = []
    for fps in sorted({x[3] for x in results}):
      scored += eval_lib.score([x for x in results if x[3] == fps], config.eval).rows
    for row in scored:
      out = rows[row["video_id"]]
      out.update(hr_ref=row["hr_ref"], lo=row["ref_range_lo"], hi=row["ref_range_hi"])
      out[name] = row["hr_pred"]
    pooled[name] = float(
        metrics_lib.hr_metrics([r["hr_pred"] for r in scored], [r["hr_ref"] for r in scored])["mae"]
    )
  return list(rows.values()), pooled


def table(rows, pooled) -> list[str]:
  names = list(pooled)
  lines = [
      "| video | reference HR | reference half-power range | " + " | ".join(names) + " |",
      "|---" * (3 + len(names)) + "|",
  ]
  for r in rows:
    lines.append(
        f"| {r['video_id']} | {r['hr_ref']:.1f} | {r['lo']:.1f}-{r['hi']:.1f} | "
        + " | ".join(f"{r[n]:.1f}" for n in names) + " |"
    )
  lines.append("| pooled MAE (bpm) | | | " + " | ".join(f"{pooled[n]:.2f}" for n in names) + " |")
  return lines


def main(argv):
  dirs = argv[1:]
  if not dirs:
    raise app.UsageError("give one or more crossval workdirs or eval output directories")
  config = flags.FLAGS.config
  if config.eval.get("window_seconds"):
    raise ValueError("the floor is defined for whole-video evaluation (eval.window_seconds unset)")
  rows, pooled = floor_rows(read_references(dirs), config)
  lines = table(rows, pooled)
  print("\n".join(lines))
  markdown = flags.FLAGS.markdown
  if markdown:
    tmp = markdown + ".tmp"
    with open(tmp, "w") as f:
      f.write("\n".join(lines) + "\n")
    os.replace(tmp, markdown)


if __name__ == "__main__":
  # Defined here, not at import, so that tests can import this module next to
  # other benchmark scripts that define flags of the same names.
  config_flags.DEFINE_config_file("config", None, "The runs' config.", lock_config=True)
  flags.DEFINE_string("markdown", "", "Also write the table here.")
  app.run(main)
