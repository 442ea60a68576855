"""VIPL-HR builder: dummy tree, time.txt frame clocks, fold files, exclusions, bad items."""

import os
import shutil

import numpy as np
import pytest
import scipy.io

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import rppg_builder
from codephys_jax import video as video_lib
from codephys_jax._builders import builder_test_utils
from codephys_jax._builders import vipl_hr as vipl
from codephys_jax._builders import vipl_hr_dummy as dummy

DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")
DATA = os.path.join(DUMMY, "data")


class ViplHrTest(builder_test_utils.BuilderTestCase):
  DATASET_CLASS = vipl.ViplHr
  EXAMPLE_DIR = DUMMY
  # fold4/fold5 name only subjects absent from the dummy: those splits are empty
  # and dropped; p19/v2/source2 is excluded and p1/v1/source4 (NIR) never listed.
  SPLITS = {
      "full": 3,
      "fold1": 1,
      "fold2": 1,
      "fold3": 1,
      "train_fold1": 2,
      "train_fold2": 2,
      "train_fold3": 2,
      "train_fold4": 3,
      "train_fold5": 3,
  }
  OVERLAPPING_SPLITS = list(SPLITS)
  MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False
  SKIP_CHECKSUMS = True


@pytest.mark.parametrize(
    "contents, expected",
    [
        ({"fold2": np.array([[3.0, 1.0, 2.0]])}, [1, 2, 3]),  # assumed real format
        ({"fold": np.array([[7], [5]], dtype=np.int32)}, [5, 7]),  # column, other name
        ({"subjects": np.array(["p12", "p4"], dtype=object)}, [4, 12]),  # only variable, strings
    ],
)
def test_read_fold_formats(tmp_path, contents, expected):
  path = str(tmp_path / "fold2.mat")
  scipy.io.savemat(path, contents)
  assert vipl.read_fold(path, 2) == expected


def test_read_fold_rejects_ambiguous_and_fractional(tmp_path):
  path = str(tmp_path / "fold1.mat")
  scipy.io.savemat(path, {"a": np.array([1.0]), "b": np.array([2.0])})
  with pytest.raises(alignment.PreparationError, match="fold1.mat.*not exactly one"):
    vipl.read_fold(path, 1)
  scipy.io.savemat(path, {"fold1": np.array([1.5])})
  with pytest.raises(alignment.PreparationError, match="positive integers"):
    vipl.read_fold(path, 1)


def test_parse_wave_and_time(tmp_path):
  wave = tmp_path / "wave.csv"
  wave.write_text("Wave\n10\n12\n\n11\n")
  labels = vipl.parse_wave(str(wave))
  np.testing.assert_allclose(labels.ppg, [10, 12, 11])
  np.testing.assert_allclose(labels.times, [0, 1 / 60, 2 / 60])
  t = tmp_path / "time.txt"
  t.write_text("1000\n1041\n1079\n")
  np.testing.assert_allclose(vipl.parse_time(str(t)), [0, 0.041, 0.079])


def test_timestamped_source_restamps_and_checks_counts():
  folder = os.path.join(DATA, "p2/v1/source2")
  ts = vipl.parse_time(os.path.join(folder, "time.txt"))
  src = vipl.TimestampedSource(
      video_lib.open_video(os.path.join(folder, "video.avi")), ts, timestamps_path="time.txt"
  )
  # The video decodes one frame more than time.txt lists: dropped and counted.
  got = np.array([t for t, _ in src])
  np.testing.assert_array_equal(got, ts)
  assert src.alignment_counts == {"trimmed_frames": 1, "repaired_timestamps": 0}
  assert src.fps == pytest.approx(25.0, rel=0.02)
  # The phone's dropped frames stay a real gap on the frame clock.
  assert np.diff(ts).max() == pytest.approx(4 / 25, abs=0.01)
  short = vipl.TimestampedSource(
      video_lib.open_video(os.path.join(folder, "video.avi")), ts[:50], timestamps_path="time.txt"
  )
  with pytest.raises(video_lib.VideoError, match="time.txt.*50 timestamps but.*at most 2"):
    list(short)


def test_repeated_frame_timestamp_is_repaired_and_counted():
  folder = os.path.join(DATA, "p3/v1/source3")
  ts = vipl.parse_time(os.path.join(folder, "time.txt"))
  assert np.sum(np.diff(ts) == 0) == 1  # the dummy's quirk
  src = vipl.TimestampedSource(
      video_lib.open_video(os.path.join(folder, "video.avi")), ts, timestamps_path="time.txt"
  )
  got = np.array([t for t, _ in src])
  assert got.size == ts.size - 1 and np.all(np.diff(got) > 0)
  assert src.alignment_counts == {"trimmed_frames": 0, "repaired_timestamps": 1}


@pytest.mark.parametrize(
    "key, frame",
    [
        ("p1/v1/source1", 33),  # container clock
        ("p2/v1/source2", 45),  # time.txt clock, after the dropped frames
        ("p3/v1/source3", 70),  # time.txt clock, after the repeated stamp
    ],
)
def test_pulse_marker_at_frame_k_lands_at_frame_k(key, frame):
  item = rppg_builder.Item(
      key=key, subject_id=key.split("/")[0][1:], payload={"dir": os.path.join(DATA, key)}
  )
  got, expected, ex = builder_test_utils.marker_landing(item, vipl.ViplHr.read_item, frame=frame)
  assert abs(got - expected) <= 0.5
  if key in dummy.DROPPED:  # 3 frames dropped before frame k: 3 more periods later
    assert expected == pytest.approx((frame + 3) * 30 / 25, abs=0.5)


def test_folds_are_subject_exclusive(tmp_path):
  tree = tmp_path / "raw"
  shutil.copytree(DUMMY, tree)
  scipy.io.savemat(str(tree / "fold3.mat"), {"fold3": np.array([[3.0, 2.0]])})
  with pytest.raises(alignment.PreparationError, match="fold3.mat: subject 2 is also"):
    vipl.ViplHr(data_dir=str(tmp_path / "d")).fold_subjects(str(tree))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return builder_test_utils.prepare_dummy("vipl_hr", data_dir, DUMMY)


def test_examples_use_time_txt_clock(prepared):
  videos = {v["video_id"]: v for v in data_lib.VideoSource(prepared, "full")}
  assert sorted(videos) == ["p1/v1/source1", "p2/v1/source2", "p3/v1/source3"]
  for key, ex in videos.items():
    folder = os.path.join(DATA, key)
    time_path = os.path.join(folder, "time.txt")
    if os.path.exists(time_path):
      span = vipl.parse_time(time_path)[-1]
    else:
      span = (video_lib.open_video(os.path.join(folder, "video.avi")).num_frames - 1) / 30
    n = len(ex["frames"])
    # p2's container claims 30 fps for 100 frames (3.3 s); time.txt says 4 s.
    assert n == int(np.floor(span * 30 + 0.05)) + 1, key
    labels = vipl.parse_wave(os.path.join(folder, "wave.csv"))
    ref = np.interp(ex["timestamps"], labels.times, labels.ppg)
    np.testing.assert_allclose(ex["ppg"], ref, rtol=1e-5, atol=1e-4)
    assert ex["subject_id"] == key.split("/")[0][1:]
  assert len(videos["p2/v1/source2"]["frames"]) > 115
  assert dict(prepared.info.metadata["alignment"]) == {
      "p2/v1/source2": {"trimmed_frames": 1, "trimmed_labels": 0, "repaired_timestamps": 0},
      "p3/v1/source3": {"trimmed_frames": 0, "trimmed_labels": 0, "repaired_timestamps": 1},
  }
  counts = dict(prepared.info.metadata["item_counts"])
  assert counts["trimmed"] == 1 and counts["repaired"] == 1


def _corrupt(tree, how):
  folder = tree / "data" / "p2" / "v1" / "source2"
  if how == "no_header":
    lines = (folder / "wave.csv").read_text().splitlines()
    (folder / "wave.csv").write_text("\n".join(lines[1:]) + "\n")
  elif how == "missing_wave":
    (folder / "wave.csv").unlink()
  elif how == "time_count":
    lines = (folder / "time.txt").read_text().splitlines()
    (folder / "time.txt").write_text("\n".join(lines[:-7]) + "\n")
  elif how == "time_backwards":
    lines = (folder / "time.txt").read_text().splitlines()
    lines[10:30] = lines[10:30][::-1]  # a clock running backwards: not repairable
    (folder / "time.txt").write_text("\n".join(lines) + "\n")
  elif how == "short_wave":
    lines = (folder / "wave.csv").read_text().splitlines()
    (folder / "wave.csv").write_text("\n".join(lines[:120]) + "\n")  # ~2 s of 4
  elif how == "corrupt_video":
    (folder / "video.avi").write_bytes(b"\x00garbage" * 100)


@pytest.mark.parametrize(
    "how, message",
    [
        ("no_header", "'Wave' header"),
        ("missing_wave", "wave.csv"),
        ("time_count", "time.txt"),
        ("time_backwards", "cannot be repaired"),
        ("short_wave", "outside it"),
        ("corrupt_video", "video.avi"),
    ],
)
def test_bad_item_stops_with_named_error_and_writes_nothing(tmp_path, how, message):
  builder_test_utils.assert_bad_item_fails(
      tmp_path,
      "vipl_hr",
      source=os.path.join(DATA, "p2"),
      dest="data/p2",
      corrupt=_corrupt,
      how=how,
      key="p2/v1/source2",
      message=message,
  )


def test_split_keys_reads_folds_from_the_given_manual_dir(tmp_path):
  builder = vipl.ViplHr(config=vipl.ViplHr.make_config(manual_dir=DUMMY), data_dir=str(tmp_path))
  items = builder.list_items(DUMMY)
  assert all("manual_dir" not in it.payload for it in items)
  splits = builder.split_keys(items, DUMMY)
  assert {k: len(v) for k, v in splits.items() if v} == ViplHrTest.SPLITS
  # Another tree without fold files: only `full`, nothing read from the dummy tree.
  empty = tmp_path / "nofolds"
  empty.mkdir()
  assert {k for k, v in builder.split_keys(items, str(empty)).items() if v} == {"full"}
  with pytest.raises(ValueError, match="needs manual_dir"):
    builder.split_keys(items)
