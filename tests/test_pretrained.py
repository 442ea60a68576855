"""The shipped model (`codephys-synthetic`): it loads by name, records how it was
made, and recovers a known heart rate from a generated face video."""

import json

import numpy as np
import pytest

import predict
from codephys_jax import codec
from codephys_jax import eval_lib
from codephys_jax import hr
from codephys_jax import methods
from codephys_jax import signal as sig
from codephys_jax.synthetic_video import make_subject
from codephys_jax.video import write_video
from configs import eval as eval_config

NAME = "codephys-synthetic"
FPS = 30.0


def test_shipped_model_is_listed_with_its_card_and_pipeline():
  assert NAME in methods.pretrained_models()
  folder = methods.PRETRAINED_DIR / NAME
  card = (folder / "MODEL_CARD.md").read_text()
  for fact in ("configs/pretrain_synthetic.py", "synthetic", "commit"):
    assert fact in card
  method = methods.resolve(NAME)
  assert method.preprocess["roi"] == "landmark_patches" and method.preprocess["size"] == 16
  sidecar = json.loads((folder / f"{methods.PRETRAINED_FILE}.json").read_text())
  assert sidecar["stage"] == "codephys" and sidecar["input_dtype"] == "uint8"
  assert (folder / methods.PRETRAINED_FILE).stat().st_size < 4_000_000


def test_eval_config_takes_the_shipped_model_by_name():
  c = eval_config.get_config()
  c.method = NAME
  predictor = eval_lib.make_predictor(c)
  resolved = eval_lib.resolve_preprocess(c, predictor)
  assert (resolved.preprocess.size, resolved.preprocess.roi) == (16, "landmark_patches")


@pytest.mark.parametrize("seed, qp", [(3, None), (5, 26.0)])
def test_predict_runs_it_by_default_and_recovers_a_known_hr(seed, qp, tmp_path):
  # qp: the video as a low-rate file (the emulated codec) rather than lossless.
  subject = make_subject(seed, duration_s=12.0, fps=FPS, width=256, height=192)
  path = tmp_path / "face.avi"
  frames = subject.frames() if qp is None else codec.encode_decode(subject.frames(), qp)
  write_video(path, frames, FPS)
  ref = hr.hr_fft(sig.postprocess(subject.ppg.astype(np.float64), FPS), FPS)
  out = tmp_path / "out"
  # No --method: the shipped model is the default.
  assert predict.main([f"--video={path}", f"--out={out}", "--no-progress"]) == 0
  summary = json.loads((out / "summary.json").read_text())
  assert summary["method"].startswith(NAME)
  assert abs(summary["hr_fft_bpm"] - ref) < 3.0, (summary, ref)
