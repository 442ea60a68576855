"""UBFC-rPPG builder: dummy tree in the real layout, protocol splits, bad subjects."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import preparation
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder
from codephys_jax._builders import builder_test_utils
from codephys_jax._builders import ubfc_rppg as ubfc
from codephys_jax._builders import ubfc_rppg_dummy as dummy

DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")


class UbfcRppgTest(builder_test_utils.BuilderTestCase):
  DATASET_CLASS = ubfc.UbfcRppg
  EXAMPLE_DIR = DUMMY
  SPLITS = {"train": 2, "test": 2, "full": 5}
  OVERLAPPING_SPLITS = ["train", "test", "full"]
  MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False
  SKIP_CHECKSUMS = True


def test_protocol_lists():
  assert len(ubfc.ALL_SUBJECTS) == 42
  assert len(ubfc.TRAIN_SUBJECTS) == 30 and len(ubfc.TEST_SUBJECTS) == 8
  assert ubfc.TEST_SUBJECTS == (42, 43, 44, 45, 46, 47, 48, 49)
  assert not set(ubfc.EXCLUDED_SUBJECTS) & set(ubfc.TRAIN_SUBJECTS + ubfc.TEST_SUBJECTS)


def test_parse_ground_truth_uses_ppg_line(tmp_path):
  path = tmp_path / "ground_truth.txt"
  path.write_text("1 2 3 4\n70 0 70 70\n0.5 0.533 0.566 0.6\n")
  labels = ubfc.parse_ground_truth(str(path))
  np.testing.assert_allclose(labels.ppg, [1, 2, 3, 4])
  np.testing.assert_allclose(labels.times, [0, 0.033, 0.066, 0.1], atol=1e-9)
  assert labels.per_frame


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return builder_test_utils.prepare_dummy("ubfc_rppg", data_dir, DUMMY), data_dir


def test_examples_are_aligned_and_identified(prepared):
  builder, _ = prepared
  videos = data_lib.VideoSource(builder, "full")
  ids = sorted(videos[i]["video_id"] for i in range(len(videos)))
  assert ids == ["subject1", "subject11", "subject3", "subject42", "subject45"]
  for ex in videos:
    n = len(ex["frames"])
    assert ex["frames"].shape == (n, 32, 32, 3) and ex["frames"].dtype == np.uint8
    assert ex["ppg"].shape == (n,) and ex["rgb"].shape == (n, 3)
    assert ex["fps"] == pytest.approx(30.0)
    # The stored PPG is the ground-truth line 1 on the frame times.
    gt = ubfc.parse_ground_truth(os.path.join(DUMMY, ex["video_id"], "ground_truth.txt"))
    np.testing.assert_allclose(ex["ppg"], gt.ppg[:n], rtol=1e-5, atol=1e-6)
    assert 40 < ex["hr"] < 180


def test_reuse_is_keyed_by_manual_dir_and_settings(prepared, tmp_path):
  builder, data_dir = prepared
  same = data_lib.make_builder(
      "ubfc_rppg", data_dir=data_dir, manual_dir=DUMMY, preprocess={"size": 32}
  )
  assert same.is_prepared() and same.data_path == builder.data_path
  other_size = data_lib.make_builder(
      "ubfc_rppg", data_dir=data_dir, manual_dir=DUMMY, preprocess={"size": 24}
  )
  assert not other_size.is_prepared()
  copy = tmp_path / "copy"
  shutil.copytree(DUMMY, copy)
  other_dir = data_lib.make_builder(
      "ubfc_rppg", data_dir=data_dir, manual_dir=str(copy), preprocess={"size": 32}
  )
  assert not other_dir.is_prepared()
  assert other_dir.data_path != builder.data_path


def _corrupt(tree, how):
  gt = tree / "subject42" / "ground_truth.txt"
  if how == "missing_gt":
    gt.unlink()
  elif how == "non_numeric":
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join([lines[0].replace(" ", " abc ", 1)] + lines[1:]) + "\n")
  elif how == "nan":
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(["nan " + lines[0].split(" ", 1)[1]] + lines[1:]) + "\n")
  elif how == "length":
    lines = [ln.split() for ln in gt.read_text().splitlines()]
    gt.write_text("\n".join(" ".join(ln[:-10]) for ln in lines) + "\n")
  elif how == "two_lines":
    gt.write_text("\n".join(gt.read_text().splitlines()[:2]) + "\n")
  elif how == "corrupt_video":
    (tree / "subject42" / "vid.avi").write_bytes(b"\x00garbage" * 100)
  elif how == "empty_video":
    (tree / "subject42" / "vid.avi").write_bytes(b"")
  elif how == "no_face":
    from codephys_jax import video as video_lib

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(120)]
    video_lib.write_video(tree / "subject42" / "vid.avi", frames, 30.0, codec="MJPG")


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing_gt", "ground_truth.txt"),
        ("non_numeric", "not numeric"),
        ("nan", "NaN"),
        ("length", "frames"),
        ("two_lines", "expected 3 lines"),
        ("corrupt_video", "vid.avi"),
        ("empty_video", "vid.avi"),
        ("no_face", "face"),
    ],
)
def test_bad_subject_stops_with_named_error_and_writes_nothing(tmp_path, how, message):
  builder_test_utils.assert_bad_item_fails(
      tmp_path,
      "ubfc_rppg",
      source=os.path.join(DUMMY, "subject42"),
      dest="subject42",
      corrupt=_corrupt,
      how=how,
      key="subject42",
      message=message,
  )


def _tree_with_broken_subject(tmp_path):
  """Test subjects 42 (good) and 45 (no ground truth): both in `test` and `full`."""
  tree = tmp_path / "raw"
  for name in ("subject42", "subject45"):
    shutil.copytree(os.path.join(DUMMY, name), tree / name)
  (tree / "subject45" / "ground_truth.txt").unlink()
  return tree


def _check_skipped_preparation(tree, data_dir):
  kwargs = dict(
      data_dir=str(data_dir),
      manual_dir=str(tree),
      preprocess={"size": 16},
      options={"skip_bad_items": True},
  )
  builder = data_lib.load_builder("ubfc_rppg", **kwargs)
  assert builder.info.splits["test"].num_examples == 1
  assert builder.info.splits["full"].num_examples == 1
  assert [ex["video_id"] for ex in data_lib.VideoSource(builder, "full")] == ["subject42"]
  # Readable afterwards from a fresh builder: the file and the dataset info agree.
  again = data_lib.make_builder("ubfc_rppg", **kwargs)
  assert again.is_prepared()
  skipped = preparation.skipped_items(again)
  assert list(skipped) == ["subject45"] and "ground_truth.txt" in skipped["subject45"]
  assert dict(again.info.metadata["skipped"]) == skipped
  # subject42 decodes one frame more than its labels: trimmed and counted.
  assert dict(again.info.metadata["item_counts"]) == {
      "found": 2,
      "excluded": 0,
      "skipped": 1,
      "written": 1,
      "trimmed": 1,
      "repaired": 0,
  }
  # Skipping is part of the identity: the strict config is a different directory.
  strict = data_lib.make_builder(
      "ubfc_rppg", data_dir=str(data_dir), manual_dir=str(tree), preprocess={"size": 16}
  )
  assert strict.data_path != again.data_path and not strict.is_prepared()
  with pytest.raises(alignment.PreparationError, match="subject45.*ground_truth.txt"):
    preparation.prepare(strict, manual_dir=str(tree))


def test_skip_option_leaves_out_and_records_bad_items(tmp_path, caplog):
  tree = _tree_with_broken_subject(tmp_path)
  with caplog.at_level("INFO"):
    _check_skipped_preparation(tree, tmp_path / "tfds")
  assert "skipping subject45" in caplog.text
  assert "found 2, excluded 0, skipped 1, written 1" in caplog.text


def test_skip_option_in_the_parallel_pool(tmp_path, monkeypatch):
  monkeypatch.setenv("CODEPHYS_PREP_WORKERS", "2")
  _check_skipped_preparation(_tree_with_broken_subject(tmp_path), tmp_path / "tfds")


def test_skip_option_is_validated():
  with pytest.raises(ValueError, match="only the dataset options.*skip_bad_items"):
    ubfc.UbfcRppg.make_config(options={"num_train": 2})
  with pytest.raises(ValueError, match="must be a bool"):
    ubfc.UbfcRppg.make_config(options={"skip_bad_items": "yes"})
  strict = ubfc.UbfcRppg.make_config(manual_dir=DUMMY)
  skip = ubfc.UbfcRppg.make_config(manual_dir=DUMMY, options={"skip_bad_items": True})
  assert skip.skip_bad_items and not strict.skip_bad_items
  assert skip.name != strict.name
  # Strict names do not depend on the option's existence (data prepared before stays valid).
  assert strict.name == rppg_builder.config_name(strict.preprocess, strict.source_id)


def test_videos_in_several_splits_are_preprocessed_once(tmp_path, monkeypatch):
  calls = []
  original = alignment.build_example

  def counting(item_key, *args, **kwargs):
    calls.append(item_key)
    return original(item_key, *args, **kwargs)

  monkeypatch.setattr(alignment, "build_example", counting)
  monkeypatch.setenv("CODEPHYS_PREP_WORKERS", "1")  # count calls in this process
  builder = data_lib.load_builder(
      "ubfc_rppg", data_dir=str(tmp_path), manual_dir=DUMMY, preprocess={"size": 8}
  )
  # 5 subjects in train (2) + test (2) + full (5): each preprocessed exactly once.
  assert sorted(calls) == ["subject1", "subject11", "subject3", "subject42", "subject45"]
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 2,
      "test": 2,
      "full": 5,
  }
  # Shared examples equal across splits, and the between-split cache is gone.
  full = {ex["video_id"]: ex for ex in data_lib.VideoSource(builder, "full")}
  for ex in data_lib.VideoSource(builder, "test"):
    np.testing.assert_array_equal(ex["frames"], full[ex["video_id"]]["frames"])
    np.testing.assert_array_equal(ex["ppg"], full[ex["video_id"]]["ppg"])
    assert ex["hr"] == full[ex["video_id"]]["hr"]
  leftovers = [n for n in os.listdir(tmp_path / "ubfc_rppg") if n.startswith(".prep-cache")]
  assert leftovers == []


def _item(tree, name):
  return rppg_builder.Item(
      key=name, subject_id=name[len("subject") :], payload={"dir": os.path.join(tree, name)}
  )


def _example(tree, name, *, edit=None):
  source, labels = ubfc.UbfcRppg.read_item(_item(tree, name))
  if edit is not None:
    labels = edit(labels)
  with source:
    return alignment.build_example(
        name, name[len("subject") :], source, labels, preprocess_lib.PreprocessConfig(size=16)
    )


def test_dummy_data_has_the_real_quirks():
  for number, quirks in dummy.QUIRKS.items():
    name = f"subject{number}"
    labels = ubfc.parse_ground_truth(os.path.join(DUMMY, name, "ground_truth.txt"))
    steps = np.diff(labels.times)
    assert (np.sum(steps == 0) > 0) == ("repeated_times" in quirks), name
    assert (steps.max() > 0.4) == ("logging_gap" in quirks), name
    with ubfc.video_lib.open_video(ubfc.find_video(os.path.join(DUMMY, name))) as src:
      decoded = sum(1 for _ in src)
    assert decoded - len(labels.ppg) == (1 if "extra_frame" in quirks else 0), name


def test_pulse_marker_at_frame_k_lands_at_frame_k():
  """subject42 has every quirk; the marker sits where line 3 is 0.4 s off the frames."""
  labels = ubfc.parse_ground_truth(os.path.join(DUMMY, "subject42", "ground_truth.txt"))
  k = int(0.3 * len(labels.ppg)) + 3  # inside the logging gap's catch-up

  def mark(lab):
    ppg = np.array(lab.ppg)
    ppg[k] = ppg.max() + 10.0
    return dataclasses.replace(lab, ppg=ppg)

  ex = _example(DUMMY, "subject42", edit=mark)
  assert int(np.argmax(ex["ppg"])) == k
  assert len(ex["ppg"]) == len(labels.ppg) == len(ex["frames"])
  assert (ex["trimmed_frames"], ex["trimmed_labels"], ex["repaired_timestamps"]) == (1, 0, 0)
  # Interpolating on line 3 (the old, two-clock alignment) would move the marker.
  marked = mark(labels)
  old = np.interp(ex["timestamps"] - ex["timestamps"][0], marked.times, marked.ppg)
  assert abs(int(np.argmax(old)) - k) >= 5


def _with_frames(tmp_path, extra: int):
  """subject45 (no quirks) with `extra` more decoded frames (negative: fewer labels kept)."""
  tree = tmp_path / "raw"
  shutil.copytree(os.path.join(DUMMY, "subject45"), tree / "subject45")
  gt = tree / "subject45" / "ground_truth.txt"
  lines = [ln.split() for ln in gt.read_text().splitlines()]
  if extra > 0:
    lines = [ln[:-extra] for ln in lines]
  else:
    lines = [ln + ln[-1:] * -extra for ln in lines]
  gt.write_text("\n".join(" ".join(ln) for ln in lines) + "\n")
  return str(tree)


@pytest.mark.parametrize("extra", [1, 2, -1, -2])
def test_count_difference_within_bound_is_trimmed(tmp_path, extra):
  ex = _example(_with_frames(tmp_path, extra), "subject45")
  assert ex["trimmed_frames"] == max(extra, 0) and ex["trimmed_labels"] == max(-extra, 0)
  n_labels = 120 - max(extra, 0)
  assert len(ex["ppg"]) == len(ex["frames"]) == min(120, n_labels)
  gt = ubfc.parse_ground_truth(os.path.join(DUMMY, "subject45", "ground_truth.txt"))
  np.testing.assert_allclose(ex["ppg"], gt.ppg[: len(ex["ppg"])], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("extra", [3, -3])
def test_count_difference_beyond_bound_names_the_item(tmp_path, extra):
  assert alignment.trim_bound(123) == 2
  with pytest.raises(
      alignment.PreparationError,
      match=r"subject45: \d+ PPG samples but the video has \d+ frames",
  ):
    _example(_with_frames(tmp_path, extra), "subject45")


def test_repeated_logging_times_are_not_needed_and_not_an_error():
  ex = _example(DUMMY, "subject3")  # repeats + gap in line 3, no extra frame
  assert ex["repaired_timestamps"] == 0 and ex["trimmed_frames"] == 0
  gt = ubfc.parse_ground_truth(os.path.join(DUMMY, "subject3", "ground_truth.txt"))
  assert len(ex["ppg"]) == len(gt.ppg)


def test_readme_eval_command_on_a_tree_with_every_quirk(tmp_path):
  """The documented UBFC eval command, end to end, on lossless videos with every real quirk."""
  raw = tmp_path / "DATASET_2"
  every = {n: dummy.ALL_QUIRKS for n in (1, 3, 42)}
  # 10 s: the whole-video FFT then resolves 3.5 bpm (8 s: 7 bpm bins). 320x240:
  # at the committed dummies' 160x120, OpenCV's mp4v leaves ~400 bytes a frame
  # and quantises the sub-percent pulse out of the small landmark patches
  # (subject3's POS HR was 14 bpm off there), which no real re-encode does.
  dummy.write_tree(
      str(raw),
      {1: "avi", 3: "mp4", 42: "avi"},
      every,
      seconds=10.0,
      avi_codec="FFV1",
      width=320,
      height=240,
  )
  assert sorted(os.listdir(raw / "subject1")) == ["ground_truth.txt", "vid.avi"]
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(
      os.environ,
      PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
      CODEPHYS_PREP_WORKERS="1",
  )
  cmd = [
      sys.executable,
      "eval.py",
      "--config=configs/eval.py",
      "--config.method=pos",
      "--config.dataset=ubfc_rppg",
      f"--config.manual_dir={raw}",
      "--config.split=full",
      f"--config.data_dir={tmp_path / 'tfds'}",
      f"--workdir={tmp_path / 'out'}",
  ]
  done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert re.search(r"pos on ubfc_rppg/full: MAE \d+\.\d+", done.stderr)
  with open(tmp_path / "out" / "metrics.json") as f:
    metrics = json.load(f)
  # Clean rendered faces: within one FFT bin of the reference.
  assert metrics["num_videos"] == 3 and metrics["mae"] <= 3.6
  (provenance,) = list((tmp_path / "tfds").rglob("provenance.json"))
  counts = json.loads(provenance.read_text())["item_counts"]
  assert counts["written"] == 3 and counts["trimmed"] == 3 and counts["repaired"] == 0


def test_concurrent_preparations_take_turns(tmp_path):
  """Two processes preparing one data_dir at once: one prepares, the other reads it."""
  data_dir = tmp_path / "tfds"
  code = (
      "import sys; from codephys_jax import data as data_lib;"
      f"b = data_lib.load_builder('ubfc_rppg', data_dir={str(data_dir)!r}, manual_dir={DUMMY!r},"
      " preprocess={'size': 16});"
      "print('videos', len(data_lib.open_split(b, 'full')))"
  )
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), CODEPHYS_PREP_WORKERS="1")
  procs = [
      subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
      for _ in range(2)
  ]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
    assert "videos 5" in out
  # Prepared once: a single config directory with one version in it.
  configs = [d for d in os.listdir(data_dir / "ubfc_rppg") if not d.startswith(".")]
  assert len(configs) == 1
  assert len(os.listdir(data_dir / "ubfc_rppg" / configs[0])) == 1  # one version directory


def test_builder_made_before_another_prepared_reads_its_info(tmp_path):
  kwargs = dict(data_dir=str(tmp_path / "tfds"), manual_dir=DUMMY, preprocess={"size": 16})
  early = data_lib.make_builder("ubfc_rppg", **kwargs)
  assert not early.is_prepared()
  data_lib.load_builder("ubfc_rppg", **kwargs)  # "another process" prepares it
  assert early.is_prepared() and not early.info.splits
  preparation.prepare(early, manual_dir=DUMMY)
  assert early.info.splits["full"].num_examples == 5
  assert len(data_lib.open_split(early, "full")) == 5
