"""Heart rate from your own video (or a camera), with any rPPG method of this project.

  python predict.py --video=PATH --out=DIR

--video: a video file OpenCV can read, or a camera index (e.g. 0; recorded for
--seconds). --method: the shipped model codephys-synthetic (the default), an
unsupervised method name (pos, chrom, green, ica, lgi, pbv, omit), a training
workdir, or an exported model file. --roi=full_frame
uses whole frames, for videos that are already a face or skin crop. Writes
DIR/summary.json, DIR/hr.csv, DIR/waveform.csv and DIR/predict.png (written by
codephys_jax/predict_lib.py, write_outputs).
"""

from __future__ import annotations

import argparse
import sys

from codephys_jax import face
from codephys_jax import predict_lib
from codephys_jax.video import VideoError, open_input


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--video", required=True, help="video file, or a camera index such as 0")
  ap.add_argument(
      "--method",
      default=predict_lib.DEFAULT_METHOD,
      help="unsupervised method name (pos, chrom, ...), shipped model name "
      f"(default: {predict_lib.DEFAULT_METHOD}), training workdir or exported model file",
  )
  ap.add_argument("--out", required=True, help="output directory")
  ap.add_argument("--seconds", type=float, default=30.0, help="recording length for a camera")
  ap.add_argument(
      "--detector",
      default=None,
      choices=sorted(face.DETECTORS),
      help="face detector (default: blazeface)",
  )
  ap.add_argument(
      "--roi",
      default=None,
      help="'face' (default: detect and track the face), 'landmark_patches' (its "
      "forehead and cheek patches) or 'full_frame' (the whole frame, for videos that "
      "are already a face or skin crop); config preprocess.roi",
  )
  ap.add_argument(
      "--rgb_roi",
      default=None,
      choices=["landmarks", "box"],
      help="where skin colour is averaged inside the face (unsupervised methods); "
      "'box' uses the whole face crop with the adaptive skin mask; config preprocess.rgb_roi",
  )
  ap.add_argument("--window", type=float, default=10.0, help="HR window in seconds")
  ap.add_argument("--no-progress", action="store_true", help="no progress bar")
  args = ap.parse_args(argv)
  if args.roi in ("landmarks", "box"):
    # --roi once named the skin-colour region; it now matches preprocess.roi.
    ap.error(
        f"--roi={args.roi}: --roi selects face, landmark_patches or full_frame "
        "(config preprocess.roi); "
        f"the skin-colour region is --rgb_roi={args.roi}"
    )
  if args.roi not in (None, "face", "landmark_patches", "full_frame"):
    ap.error(f"--roi must be face, landmark_patches or full_frame, got {args.roi!r}")
  overrides = {
      k: v
      for k, v in (("detector", args.detector), ("rgb_roi", args.rgb_roi), ("roi", args.roi))
      if v
  }
  if args.rgb_roi == "box":
    overrides["skin_mask"] = True  # without it the crop's background and hair dilute the pulse
  try:
    source = open_input(args.video, seconds=args.seconds)
    with source:
      pred = predict_lib.predict(
          source,
          args.method,
          preprocess_overrides=overrides,
          window_s=args.window,
          progress=not args.no_progress,
      )
    files = predict_lib.write_outputs(pred, args.out)
  except face.NoFaceError as e:
    print(f"predict.py: error: {e}; {predict_lib.FULL_FRAME_HINT}", file=sys.stderr)
    return 1
  except (VideoError, ValueError, FileNotFoundError, face.DetectorUnavailableError) as e:
    print(f"predict.py: error: {e}", file=sys.stderr)
    return 1
  for warning in pred.warnings:
    print(f"predict.py: warning: {warning}", file=sys.stderr)
  flag = "" if pred.reliable else " (low quality: treat with caution)"
  print(
      f"{pred.source}: {pred.hr_bpm:.1f} bpm, quality {pred.quality:.2f}{flag}; "
      f"wrote {', '.join(files.values())}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
