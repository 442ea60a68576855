"""How linearly accessible is the pulse in each input representation?

A cheap proxy for choosing `config.input_norm` without a training run per choice:
for each representation, clips of the training subjects are normalised as the
model sees them, average-pooled to a G x G grid (x 3 colours) per frame, and a
ridge regression from those features to the representation's target is fitted
on the training subjects and scored on the held-out validation subjects (the
split training uses): Pearson r of the output *waveform* (integrated for
diff targets) with the PPG, per clip, and the clip heart-rate error.

  python benchmarks/representations.py --data_dir=/tmp/data   # default config's data

Prints a markdown table; numbers and conditions go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from codephys_jax import data as data_lib
from codephys_jax import losses
from codephys_jax import representations
from configs import default as default_config


def _clips(videos, clip_length: int, stride: int):
  frames, ppg = [], []
  for video in videos:
    n = len(video["ppg"])
    for s in range(0, n - clip_length + 1, stride):
      frames.append(video["frames"][s : s + clip_length])
      ppg.append(data_lib.normalize_ppg(video["ppg"][s : s + clip_length]))
  return np.stack(frames), np.stack(ppg).astype(np.float32)


def _features(x: np.ndarray, grid: int) -> np.ndarray:
  b, t, h, w, c = x.shape
  pooled = x.reshape(b, t, grid, h // grid, grid, w // grid, c).mean(axis=(3, 5))
  return pooled.reshape(b, t, grid * grid * c)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", default="")
  parser.add_argument("--grid", type=int, default=4)
  parser.add_argument("--ridge", type=float, default=1.0)
  args = parser.parse_args()
  config = default_config.get_config()
  config.data_dir = args.data_dir
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  train_videos, val_videos = data_lib.train_val_videos(builder, config)
  t_len, fs = config.clip_length, float(config.preprocess.target_fps)
  train_frames, train_ppg = _clips(train_videos, t_len, t_len // 2)
  val_frames, val_ppg = _clips(val_videos, t_len, t_len // 2)
  hr_ref = np.asarray(losses.hr_from_ppg_jax(val_ppg, fs))
  print(
      f"| input_norm | val clip Pearson r (mean) | val clip HR MAE (bpm) | "
      f"({len(train_frames)} train / {len(val_frames)} val clips of {t_len} frames, "
      f"{args.grid}x{args.grid} grid, ridge {args.ridge}) |"
  )
  print("|---|---|---|")
  for mode in representations.NAMES:
    t0 = time.perf_counter()
    xs = _features(np.asarray(representations.normalize_frames(train_frames, mode)), args.grid)
    ys = np.asarray(representations.label_target(train_ppg, mode))
    a = xs.reshape(-1, xs.shape[-1])
    w = np.linalg.solve(a.T @ a + args.ridge * np.eye(a.shape[1]), a.T @ ys.reshape(-1))
    xv = _features(np.asarray(representations.normalize_frames(val_frames, mode)), args.grid)
    out = np.asarray(representations.to_waveform(xv @ w, mode))
    r = [np.corrcoef(o, p)[0, 1] for o, p in zip(out, val_ppg)]
    hr = np.asarray(losses.hr_from_ppg_jax(out.astype(np.float32), fs))
    print(
        f"| {mode} | {np.nanmean(r):.3f} | {np.mean(np.abs(hr - hr_ref)):.1f} | "
        f"({time.perf_counter() - t0:.1f} s)"
    )


if __name__ == "__main__":
  main()
