"""How much pulse survives the emulated codec, against what real files keep.

  ./run.sh python benchmarks/codec_pulse.py [--subjects=6] [--qps=none,18,22,26,30,34] \
      [--manual_dir=/path/to/UBFC_tree --data_dir=DIR]

Synthetic part: renders `--subjects` subjects as `synthetic_rppg` does for
`configs/pretrain_synthetic.py` (20 s, 256x192, moving heads), passes each
through `codephys_jax.codec` at every quantisation parameter of `--qps` ('none'
= lossless), runs the face pipeline and POS on the landmark-ROI trace (what the
unsupervised rows use), and prints, per QP: POS's SNR (dB) against the PPG's
own HR, POS's HR error, and the share of pixels equal to the previous frame
(a codec holding blocks between frames raises it; sensor noise lowers it).

Real part (with `--manual_dir`, a UBFC-layout tree): the same three numbers for
each real video, plus its bits per pixel, so the QP range whose synthetic
numbers cover the real ones can be read off. Both parts use the labels only to
score POS, never to fit anything. The two are not the same kind of video: the
synthetic frames are 256x192 with an intra frame every 250, the real files
640x480 with their own encoder's choices; a face covering more blocks averages
the held blocks' errors over more of them, so the match is approximate.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import ml_collections
import numpy as np

from codephys_jax import codec
from codephys_jax import data as data_lib
from codephys_jax import evaluation
from codephys_jax import preprocess
from codephys_jax import synthetic_video
from codephys_jax import unsupervised
from codephys_jax import video as video_lib
from configs import common

STILL_FRAMES = 300


def pos_scores(rgb: np.ndarray, ppg: np.ndarray, fs: float) -> tuple[float, float]:
  """(POS's SNR in dB, |POS's whole-video HR - the PPG's|), as eval.py scores them."""
  bvp = unsupervised.pos(rgb.astype(np.float64), fs)
  row = evaluation.evaluate_signals([("v", bvp, ppg)], evaluation.EvalSettings(fs=fs)).rows[0]
  return row["snr"], abs(row["hr_pred"] - row["hr_ref"])


def unchanged(frames: list[np.ndarray]) -> float:
  """Share of pixel values equal to the previous frame's (first STILL_FRAMES frames)."""
  f = np.stack(frames[:STILL_FRAMES])
  return float(np.mean(f[1:] == f[:-1]))


def synthetic_rows(num: int, qps: list[float | None], pre: preprocess.PreprocessConfig) -> list[str]:
  per_qp: dict[float | None, list[tuple[float, float, float]]] = {q: [] for q in qps}
  for i in range(num):
    subject = synthetic_video.make_subject(
        1000 + i, duration_s=20.0, width=256, height=192, hr_range_bpm=(50.0, 130.0), active_motion=1.0
    )
    frames = list(subject.frames())
    for q in qps:
      coded = frames if q is None else list(codec.encode_decode(frames, q))
      source = subject.source(lambda coded=coded: iter(coded))
      rgb = preprocess.preprocess_video(source, pre).rgb
      per_qp[q].append((*pos_scores(rgb, subject.ppg, subject.fps), unchanged(coded)))
  rows = [
      "| synthetic, QP | POS SNR (dB), median (range) | POS HR error (bpm), mean | unchanged pixels |",
      "|---|---|---|---|",
  ]
  for q in qps:
    v = np.array(per_qp[q])
    rows.append(
        f"| {'lossless' if q is None else f'{q:g}'} | {np.median(v[:, 0]):.1f} "
        f"({v[:, 0].min():.1f} to {v[:, 0].max():.1f}) | {v[:, 1].mean():.1f} | {v[:, 2].mean():.3f} |"
    )
  return rows


def real_rows(manual_dir: str, data_dir: str, pre: ml_collections.ConfigDict) -> list[str]:
  cfg = ml_collections.ConfigDict(
      dict(data_dir=data_dir, manual_dir=manual_dir, preprocess=pre, dataset_options={})
  )
  builder = data_lib.load_builder("ubfc_rppg", **data_lib.builder_kwargs(cfg))
  videos = sorted(data_lib.open_split(builder, "full"), key=lambda v: int(v["subject_id"]))
  rows = [
      "| real subject | bits per pixel | POS SNR (dB) | POS HR error (bpm) | unchanged pixels |",
      "|---|---|---|---|---|",
  ]
  # The builder's own subject folders and video lookup (any vid.* container).
  dirs = {it.subject_id: it.payload["dir"] for it in builder.list_items(manual_dir)}
  find_video = sys.modules[type(builder).__module__].find_video
  for v in videos:
    fs = float(v["fps"])
    with video_lib.open_video(find_video(dirs[v["subject_id"]])) as source:
      path, (w, h), n = source.path, source.size, source.num_frames
      frames = [frame for _, frame in itertools.islice(source, STILL_FRAMES)]
    # The whole file (container included) over the container's frame count.
    bpp = os.path.getsize(path) * 8 / (n * w * h) if n else float("nan")
    snr, err = pos_scores(v["rgb"], v["ppg"], fs)
    rows.append(f"| {v['subject_id']} | {bpp:.4f} | {snr:.1f} | {err:.1f} | {unchanged(frames):.3f} |")
  return rows


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--subjects", type=int, default=6)
  p.add_argument("--qps", default="none,18,22,26,30,34")
  p.add_argument("--manual_dir", default="")
  p.add_argument("--data_dir", default="")
  args = p.parse_args()
  qps = [None if q.strip() == "none" else float(q) for q in args.qps.split(",")]
  pre = common.preprocess(16)
  pre.roi = "landmark_patches"  # the frames of configs/pretrain_synthetic.py and ubfc_cpu.py
  print("\n".join(synthetic_rows(args.subjects, qps, preprocess.PreprocessConfig(**pre.to_dict()))))
  if args.manual_dir:
    print()
    print("\n".join(real_rows(args.manual_dir, args.data_dir, pre)))


if __name__ == "__main__":
  main()
