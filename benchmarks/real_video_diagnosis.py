"""Is the pulse in the learned models' input, and do video and label line up?

  ./run.sh python benchmarks/real_video_diagnosis.py --manual_dir=/path/to/UBFC_tree \
      [--size=16] [--grid=4] [--box_scale=1.5] [--data_dir=DIR]

Reads (preparing on first use) every subject of a UBFC-layout tree at the given
face-crop size and prints three markdown tables, per subject:

1. Whole-video HR (FFT, 0.75-2.5 Hz) from the reference PPG; POS and CHROM on the
   full-resolution landmark-ROI trace (what the unsupervised rows use); POS on the
   mean of the prepared crop; POS on each of `grid x grid` cells of the crop (how
   many cells land within 5 bpm of the reference) and on the sum of the cells'
   unit-variance POS outputs. The learned models see only the crops.
2. The lag (frames, within +-1 s) of the largest positive correlation between
   CHROM's output and the PPG label, both band-passed, and the correlation at lag 0.
   CHROM's sign follows blood volume like the label's, so a lag near 0 on every
   subject says the label and the frames share one clock.
3. A linear probe: ridge regression from the band-passed relative colour change
   of the `grid x grid` cells (3 channels each) to the band-passed PPG, trained on
   the other subjects (leave one subject out); its output's HR and correlation.
"""

from __future__ import annotations

import argparse

import ml_collections
import numpy as np

from codephys_jax import data as data_lib
from codephys_jax import hr as hr_lib
from codephys_jax import signal as sig
from codephys_jax import unsupervised
from configs import common

LOW_HZ, HIGH_HZ = 0.75, 2.5


def band(x: np.ndarray, fs: float) -> np.ndarray:
  return sig.bandpass(sig.detrend(x, lam=100.0), fs, low_hz=LOW_HZ, high_hz=HIGH_HZ)


def hr(x: np.ndarray, fs: float) -> float:
  return hr_lib.hr_fft(band(x, fs), fs, low_hz=LOW_HZ, high_hz=HIGH_HZ)


def unit(x: np.ndarray) -> np.ndarray:
  return (x - x.mean()) / max(float(x.std()), 1e-12)


def cell_means(frames: np.ndarray, grid: int) -> np.ndarray:
  """[T, S, S, 3] uint8 -> [T, grid, grid, 3] float means (S divisible by grid)."""
  t, s, _, _ = frames.shape
  k = s // grid
  f = frames[:, : k * grid, : k * grid].astype(np.float64)
  return f.reshape(t, grid, k, grid, k, 3).mean(axis=(2, 4))


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float, float]:
  """(lag of the largest positive correlation of a[t + lag] with b[t], it, at lag 0)."""
  a, b = unit(a), unit(b)
  lags = np.arange(-max_lag, max_lag + 1)
  cc = np.array(
      [np.mean(a[max(0, l) : len(a) + min(0, l)] * b[max(0, -l) : len(b) - max(0, l)]) for l in lags]
  )
  k = int(np.argmax(cc))
  return int(lags[k]), float(cc[k]), float(cc[max_lag])


def probe_features(cells: np.ndarray, fs: float) -> np.ndarray:
  rel = cells.reshape(cells.shape[0], -1)
  rel = rel / np.maximum(rel.mean(axis=0), 1e-6) - 1.0
  return np.stack([band(rel[:, j], fs) for j in range(rel.shape[1])], axis=1)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--manual_dir", required=True)
  p.add_argument("--data_dir", default="")
  p.add_argument("--size", type=int, default=16)
  p.add_argument("--grid", type=int, default=4)
  p.add_argument("--box_scale", type=float, default=1.5)
  p.add_argument("--roi", default="face", help="preprocess.roi of the crops: face or landmark_patches")
  p.add_argument("--ridge", type=float, default=1e-2, help="ridge penalty per sample (standardised features)")
  args = p.parse_args()
  pre = common.preprocess(args.size)
  pre.box_scale = args.box_scale
  pre.roi = args.roi
  cfg = ml_collections.ConfigDict(
      dict(data_dir=args.data_dir, manual_dir=args.manual_dir, preprocess=pre, dataset_options={})
  )
  builder = data_lib.load_builder("ubfc_rppg", **data_lib.builder_kwargs(cfg))
  videos = sorted(data_lib.open_split(builder, "full"), key=lambda v: int(v["subject_id"]))
  g = args.grid
  rows, lags, probe = [], [], {}
  for v in videos:
    fs = float(v["fps"])
    ppg = v["ppg"].astype(np.float64)
    rgb = v["rgb"].astype(np.float64)
    ref = hr(ppg, fs)
    cells = cell_means(v["frames"], g)
    cell_pos = [band(unsupervised.pos(cells[:, i, j], fs), fs) for i in range(g) for j in range(g)]
    cell_hr = np.array([hr_lib.hr_fft(c, fs, low_hz=LOW_HZ, high_hz=HIGH_HZ) for c in cell_pos])
    rows.append(
        (
            v["subject_id"],
            ref,
            hr(unsupervised.pos(rgb, fs), fs),
            hr(unsupervised.chrom(rgb, fs), fs),
            hr(unsupervised.pos(v["frames"].astype(np.float64).mean(axis=(1, 2)), fs), fs),
            int(np.sum(np.abs(cell_hr - ref) < 5.0)),
            hr(np.sum([unit(c) for c in cell_pos], axis=0), fs),
        )
    )
    lags.append((v["subject_id"], *best_lag(band(unsupervised.chrom(rgb, fs), fs), band(ppg, fs), int(fs))))
    probe[v["subject_id"]] = (probe_features(cells, fs), unit(band(ppg, fs)), fs, ref)

  print(f"## 1. The pulse in the input ({args.size} px {args.roi} crops, box x{args.box_scale}, {g}x{g} cells)\n")
  print("| subject | reference HR | POS, landmark ROI | CHROM, landmark ROI | POS, crop mean | cells within 5 bpm | POS, sum of cells |")
  print("|---|---|---|---|---|---|---|")
  for s, ref, pos_roi, chrom_roi, pos_crop, ok, summed in rows:
    print(f"| {s} | {ref:.1f} | {pos_roi:.1f} | {chrom_roi:.1f} | {pos_crop:.1f} | {ok}/{g * g} | {summed:.1f} |")
  err = np.abs(np.array([[r[2], r[3], r[4], r[6]] for r in rows]) - np.array([[r[1]] for r in rows]))
  m = err.mean(axis=0)
  print(f"| MAE | | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | | {m[3]:.2f} |\n")

  print("## 2. Label against video: CHROM (landmark ROI) vs PPG, band-passed\n")
  print("| subject | best lag (frames) | correlation there | correlation at lag 0 |")
  print("|---|---|---|---|")
  for s, lag, best, zero in lags:
    print(f"| {s} | {lag:+d} | {best:.2f} | {zero:.2f} |")

  print(f"\n## 3. Linear probe on the {g}x{g} cells, leave one subject out\n")
  print("| subject | reference HR | probe HR | correlation with PPG |")
  print("|---|---|---|---|")
  errors = []
  for s, (x, y, fs, ref) in probe.items():
    xs = np.concatenate([probe[t][0] for t in probe if t != s])
    ys = np.concatenate([probe[t][1] for t in probe if t != s])
    scale = xs.std(axis=0) + 1e-12
    a = xs / scale
    w = np.linalg.solve(a.T @ a + args.ridge * len(a) * np.eye(a.shape[1]), a.T @ ys)
    out = (x / scale) @ w
    est = hr_lib.hr_fft(out, fs, low_hz=LOW_HZ, high_hz=HIGH_HZ)
    errors.append(abs(est - ref))
    print(f"| {s} | {ref:.1f} | {est:.1f} | {np.corrcoef(out, y)[0, 1]:.2f} |")
  print(f"| MAE | | {np.mean(errors):.2f} | |")


if __name__ == "__main__":
  main()
