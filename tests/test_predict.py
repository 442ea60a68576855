"""Tests for predict.py / codephys_jax.predict_lib on synthetic videos written to disk."""

import csv
import json

import jax.numpy as jnp
import numpy as np
import pytest

import predict
from codephys_jax import export, hr, inference, predict_lib, preprocess
from codephys_jax import signal as sig
from codephys_jax.synthetic_video import make_subject
from codephys_jax.video import open_input, write_video

FPS = 30.0


def _reference_hr(subject) -> float:
  ppg = sig.postprocess(subject.ppg.astype(np.float64), subject.fps)
  return hr.hr_fft(ppg, subject.fps)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
  """An 8 s synthetic face video (lossless FFV1 .avi) and its reference HR."""
  subject = make_subject(11, duration_s=8.0, fps=FPS, width=192, height=144)
  path = tmp_path_factory.mktemp("vid") / "my video.avi"
  write_video(path, subject.frames(), FPS)
  return path, _reference_hr(subject), subject.num_frames


def _read_csv(path):
  with open(path) as f:
    return list(csv.reader(f))


def test_predict_cli_recovers_known_hr(face_video, tmp_path, capsys):
  path, ref_hr, n = face_video
  out = tmp_path / "out"
  rc = predict.main([f"--video={path}", "--method=pos", f"--out={out}", "--window=6"])
  assert rc == 0
  summary = json.loads((out / "summary.json").read_text())
  assert summary["method"] == "pos" and summary["video"] == str(path)
  assert abs(summary["hr_bpm"] - ref_hr) < 3.0, (summary, ref_hr)
  assert summary["reliable"] and summary["quality"] > 0.5
  assert summary["num_source_frames"] == n and summary["face_fraction"] > 0.95
  rows = _read_csv(out / "hr.csv")
  assert rows[0] == ["time_s", "hr_bpm", "quality", "reliable"]
  body = np.array(rows[1:], float)
  assert len(body) == 3  # 6 s windows, 1 s steps over 8 s
  np.testing.assert_allclose(body[:, 0], [3.0, 4.0, 5.0])
  assert np.all(np.abs(body[:, 1] - ref_hr) < 5.0) and np.all(body[:, 3] == 1)
  wave = _read_csv(out / "waveform.csv")
  assert wave[0] == ["time_s", "rppg"] and len(wave) == n + 1
  t = np.array([r[0] for r in wave[1:]], float)
  np.testing.assert_allclose(t, np.arange(n) / FPS, atol=1e-3)
  png = (out / "predict.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
  assert not list(out.glob("*.tmp*"))
  assert f"{summary['hr_bpm']:.1f} bpm" in capsys.readouterr().out


def test_predict_with_an_exported_model_file(face_video, tmp_path):
  """--method=<exported file>: crops of the sidecar's size and rate go through the artefact."""
  path, _, _ = face_video
  size, clip = 32, 64

  def green_mean(params, x):  # uint8 [b, T, S, S, 3] -> [b, T]
    # Green of the cheek/nose band of the crop (the 1.5x box's edges are background).
    return -params["w"] * x[:, :, 13:22, 6:26, 1].astype(jnp.float32).mean(axis=(2, 3))

  model = tmp_path / "export" / "model.bin"
  export.export_inference(
      green_mean, {"w": jnp.float32(2.0)}, (clip, size, size, 3), np.uint8, model, fs=FPS
  )
  pred = predict_lib.predict(
      open_input(str(path)), str(model), window_s=6.0, progress=False
  )
  assert pred.method == f"exported model {model}"
  # The same model in NumPy on the same crops, through the same overlap-add.
  with open_input(str(path)) as src:
    video = preprocess.preprocess_video(src, preprocess.PreprocessConfig(size=size))
  clip_fn = lambda b: -2.0 * b[:, :, 13:22, 6:26, 1].astype(np.float32).mean(axis=(2, 3))
  want = inference.predict_video(video.frames, clip_fn, clip_length=clip, batch_size=4)
  np.testing.assert_allclose(pred.rppg, sig.postprocess(want, FPS), atol=1e-4)
  assert np.isfinite(pred.hr_bpm) and 45 <= pred.hr_bpm <= 150
  # Two models separated by a comma: their ensemble (a second model of twice the
  # scale counts as much as the first: the same waveform at unit scale).
  model2 = tmp_path / "export2" / "model.bin"
  export.export_inference(
      green_mean, {"w": jnp.float32(4.0)}, (clip, size, size, 3), np.uint8, model2, fs=FPS
  )
  ens = predict_lib.predict(
      open_input(str(path)), f"{model},{model2}", window_s=6.0, progress=False
  )
  assert ens.method.startswith("ensemble of 2")
  unit = (want - want.mean()) / want.std()
  np.testing.assert_allclose(ens.rppg, sig.postprocess(unit, FPS), atol=1e-4)
  assert ens.hr_bpm == pytest.approx(pred.hr_bpm)


@pytest.mark.parametrize("roi", ["box", "landmarks"])
def test_predict_roi_option(face_video, tmp_path, roi):
  path, ref_hr, _ = face_video
  pred = predict_lib.predict(
      open_input(str(path)),
      "chrom",
      window_s=6.0,
      preprocess_overrides={"rgb_roi": roi, "skin_mask": roi == "box"},
      progress=False,
  )
  assert abs(pred.hr_bpm - ref_hr) < 3.0


def _fails(argv, capsys, *needles):
  rc = predict.main(argv)
  err = capsys.readouterr().err
  assert rc != 0
  for needle in needles:
    assert needle in err, err
  return err


def test_error_missing_and_unreadable_file(tmp_path, capsys):
  out = tmp_path / "out"
  missing = tmp_path / "nope.mp4"
  _fails([f"--video={missing}", f"--out={out}"], capsys, str(missing), "file not found")
  junk = tmp_path / "junk.avi"
  junk.write_bytes(b"this is not a video" * 100)
  _fails([f"--video={junk}", f"--out={out}"], capsys, str(junk))
  assert not out.exists()  # nothing half-written


def test_error_no_face(tmp_path, capsys):
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(200)]
  path = tmp_path / "noise.avi"
  write_video(path, frames, FPS)
  _fails([f"--video={path}", f"--out={tmp_path / 'o'}"], capsys, str(path), "no face")


def test_error_too_short_and_bad_method(tmp_path, capsys):
  subject = make_subject(2, duration_s=2.0, fps=FPS, width=160, height=120)
  path = tmp_path / "short.avi"
  write_video(path, subject.frames(), FPS)
  _fails([f"--video={path}", f"--out={tmp_path / 'o'}"], capsys, str(path), "2.0 s long")
  _fails(
      [f"--video={path}", "--method=notamethod", f"--out={tmp_path / 'o'}"],
      capsys,
      "notamethod",
      "pos",
  )
  _fails(
      [f"--video={tmp_path}", f"--out={tmp_path / 'o'}"],
      capsys,
      str(tmp_path),
      "not a regular file",
  )


def test_error_workdir_without_checkpoints(tmp_path, capsys):
  wd = tmp_path / "run"
  wd.mkdir()
  vid = tmp_path / "v.avi"
  write_video(vid, [np.zeros((32, 32, 3), np.uint8)] * 3, FPS)
  _fails(
      [f"--video={vid}", f"--method={wd}", f"--out={tmp_path / 'o'}"],
      capsys,
      str(wd),
      "not a training workdir",
  )


def test_error_camera_that_does_not_exist(tmp_path, capsys):
  _fails(["--video=97", f"--out={tmp_path / 'o'}"], capsys, "camera:97", "cannot open camera")


@pytest.fixture(scope="module")
def crop_video(tmp_path_factory):
  """An 8 s 200x200 crop of the upper face (forehead, brows, eyes): no whole face.

  The detector finds a face now and then, and the tracker carries its box over
  the frames in between (a usable ROI in ~55% of the frames).
  """
  import cv2

  from codephys_jax import face

  subject = make_subject(11, duration_s=8.0, fps=FPS, width=320, height=240)
  frames = list(subject.frames())
  b = face.detect_faces(frames[0])[0]
  y0, y1 = int(b.cy - 0.4 * b.side), int(b.cy + 0.15 * b.side)
  x0, x1 = int(b.cx - 0.45 * b.side), int(b.cx + 0.45 * b.side)
  path = tmp_path_factory.mktemp("crop") / "upper_face.avi"
  write_video(path, [cv2.resize(f[y0:y1, x0:x1], (200, 200)) for f in frames], FPS)
  return path, _reference_hr(subject)


def test_crop_video_reports_few_detected_faces_and_suggests_full_frame(crop_video, tmp_path, capsys):
  path, _ = crop_video
  out = tmp_path / "face"
  argv = [f"--video={path}", "--method=pos", f"--out={out}", "--window=6", "--no-progress"]
  assert predict.main(argv) == 0
  err = capsys.readouterr().err
  summary = json.loads((out / "summary.json").read_text())
  assert summary["roi"] == "face"
  # Real detections only: boxes carried over between them do not count.
  assert summary["face_fraction"] < 0.5 < summary["roi_fraction"], summary
  assert len(summary["warnings"]) == 1 and "--roi=full_frame" in summary["warnings"][0]
  assert "warning: a face was detected in only" in err and "--roi=full_frame" in err


def test_full_frame_roi_on_a_crop_video(crop_video, tmp_path):
  path, ref_hr = crop_video
  out = tmp_path / "full"
  argv = [
      f"--video={path}", "--method=pos", f"--out={out}", "--window=6", "--roi=full_frame",
      "--no-progress",
  ]
  assert predict.main(argv) == 0
  summary = json.loads((out / "summary.json").read_text())
  assert summary["roi"] == "full_frame" and summary["face_fraction"] is None
  assert summary["roi_fraction"] == 1.0 and summary["warnings"] == []
  assert abs(summary["hr_bpm"] - ref_hr) < 3.0, (summary, ref_hr)


@pytest.mark.parametrize("old", ["landmarks", "box"])
def test_old_roi_values_point_at_rgb_roi(old, tmp_path, capsys):
  with pytest.raises(SystemExit):
    predict.main(["--video=x.avi", f"--out={tmp_path}", f"--roi={old}"])
  err = capsys.readouterr().err
  assert f"--rgb_roi={old}" in err and "face, landmark_patches or full_frame" in err


def test_no_face_error_suggests_full_frame(tmp_path, capsys):
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(200)]
  path = tmp_path / "noise.avi"
  write_video(path, frames, FPS)
  _fails([f"--video={path}", f"--out={tmp_path / 'o'}"], capsys, "no face", "--roi=full_frame")
