"""COHFACE builder: dummy tree, official lists, 20 -> 30 fps alignment, bad videos."""

import os
import shutil

import h5py
import numpy as np
import pytest

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import rppg_builder
from codephys_jax._builders import builder_test_utils
from codephys_jax._builders import cohface

DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")


class CohfaceTest(builder_test_utils.BuilderTestCase):
  DATASET_CLASS = cohface.Cohface
  EXAMPLE_DIR = DUMMY
  SPLITS = {"train": 2, "dev": 1, "test": 1, "full": 4}
  OVERLAPPING_SPLITS = ["train", "dev", "test", "full"]
  MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False
  SKIP_CHECKSUMS = True


def test_official_lists_partition_the_subjects():
  subjects = [s for v in cohface.OFFICIAL_SUBJECTS.values() for s in v]
  assert sorted(subjects) == list(range(1, 41))
  assert [len(v) for v in cohface.OFFICIAL_SUBJECTS.values()] == [12, 12, 16]


def test_protocol_files_match_built_in_lists(tmp_path):
  from_files = cohface.protocol_keys(DUMMY)
  built_in = cohface.protocol_keys(str(tmp_path))  # no protocols/ there
  assert from_files == built_in
  assert from_files["train"][:2] == ["1/0", "1/1"] and len(from_files["test"]) == 64


def test_protocol_file_errors(tmp_path):
  folder = tmp_path / "protocols" / "all"
  folder.mkdir(parents=True)
  (folder / "train.txt").write_text("1/0/data\n2/0\n")
  (folder / "dev.txt").write_text("")
  (folder / "test.txt").write_text("")
  with pytest.raises(alignment.PreparationError, match=r"train.txt: line 2"):
    cohface.protocol_keys(str(tmp_path))
  (folder / "train.txt").write_text("1/0/data\n")
  (folder / "test.txt").write_text("1/0/data\n")
  with pytest.raises(alignment.PreparationError, match="1/0 is listed in both"):
    cohface.protocol_keys(str(tmp_path))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return builder_test_utils.prepare_dummy("cohface", data_dir, DUMMY)


def test_twenty_fps_video_is_resampled_and_pulse_aligned(prepared):
  videos = {v["video_id"]: v for v in data_lib.VideoSource(prepared, "full")}
  assert sorted(videos) == ["1/0", "1/2", "17/0", "3/1"]
  for key, ex in videos.items():
    n = len(ex["frames"])
    # 80 frames at 20 fps span 3.95 s -> 119 frames at 30 fps.
    assert n == 119 and ex["fps"] == pytest.approx(30.0), key
    np.testing.assert_allclose(ex["timestamps"], np.arange(n) / 30.0, atol=1e-6)
    with h5py.File(os.path.join(DUMMY, key, "data.hdf5")) as f:
      t, p = f["time"][()], f["pulse"][()]
    keep = np.ones(t.size, bool)
    keep[1:] = np.diff(t) > 0  # the dummy repeats one time value in 1/0
    ref = np.interp(ex["timestamps"], t[keep], p[keep])
    np.testing.assert_allclose(ex["ppg"], ref, rtol=1e-5, atol=1e-5)
    assert 40 < ex["hr"] < 180 and ex["valid"].mean() > 0.9
  test_ids = [v["video_id"] for v in data_lib.VideoSource(prepared, "test")]
  assert test_ids == ["3/1"]
  # 1/0 decodes one frame past the pulse's end and repeats one time value.
  assert (videos["1/0"]["trimmed_frames"], videos["1/0"]["repaired_timestamps"]) == (1, 1)
  assert dict(prepared.info.metadata["alignment"]) == {
      "1/0": {"trimmed_frames": 1, "trimmed_labels": 0, "repaired_timestamps": 1}
  }
  counts = dict(prepared.info.metadata["item_counts"])
  assert counts["trimmed"] == 1 and counts["repaired"] == 1


@pytest.mark.parametrize("key, frame", [("1/0", 40), ("1/0", 46), ("3/1", 12)])
def test_pulse_marker_at_frame_k_lands_at_frame_k(key, frame):
  item = rppg_builder.Item(
      key=key, subject_id=key.split("/")[0], payload={"dir": os.path.join(DUMMY, key)}
  )
  got, expected, _ = builder_test_utils.marker_landing(item, cohface.Cohface.read_item, frame=frame)
  assert abs(got - expected) <= 0.5 and expected == pytest.approx(frame * 1.5)  # 20 -> 30 fps


def test_frames_beyond_the_bound_past_the_pulse_name_the_video(tmp_path):
  folder = tmp_path / "3" / "1"
  shutil.copytree(os.path.join(DUMMY, "3", "1"), folder)
  with h5py.File(folder / "data.hdf5", "a") as f:
    t, p = f["time"][()], f["pulse"][()]
    del f["time"], f["pulse"]
    cut = t <= 3.95 - 3 / 20  # the pulse stops 3 frames before the video
    f.create_dataset("time", data=t[cut])
    f.create_dataset("pulse", data=p[cut])
  item = rppg_builder.Item(key="3/1", subject_id="3", payload={"dir": str(folder)})
  source, labels = cohface.Cohface.read_item(item)
  with source, pytest.raises(
      alignment.PreparationError, match=r"3/1: labels span .* 3 of the 80 frames .*at most 2"
  ):
    alignment.build_example(
        "3/1", "3", source, labels, cohface.preprocess_lib.PreprocessConfig(size=16)
    )


def _corrupt(tree, how):
  folder = tree / "3" / "1"
  if how == "missing_hdf5":
    (folder / "data.hdf5").unlink()
  elif how == "no_pulse":
    with h5py.File(folder / "data.hdf5", "a") as f:
      del f["pulse"]
  elif how == "length":
    with h5py.File(folder / "data.hdf5", "a") as f:
      t = f["time"][()]
      del f["time"]
      f.create_dataset("time", data=t[:-5])
  elif how == "not_hdf5":
    (folder / "data.hdf5").write_bytes(b"not an hdf5 file")
  elif how == "short_pulse":
    with h5py.File(folder / "data.hdf5", "a") as f:
      t, p = f["time"][()], f["pulse"][()]
      del f["time"], f["pulse"]
      f.create_dataset("time", data=t[:512])
      f.create_dataset("pulse", data=p[:512])
  elif how == "empty_video":
    (folder / "data.avi").write_bytes(b"")


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing_hdf5", "data.hdf5"),
        ("no_pulse", "missing dataset(s) ['pulse']"),
        ("length", "pulse samples but"),
        ("not_hdf5", "cannot read HDF5"),
        ("short_pulse", "outside it"),
        ("empty_video", "data.avi"),
    ],
)
def test_bad_video_stops_with_named_error_and_writes_nothing(tmp_path, how, message):
  builder_test_utils.assert_bad_item_fails(
      tmp_path,
      "cohface",
      source=os.path.join(DUMMY, "3", "1"),
      dest="3/1",
      corrupt=_corrupt,
      how=how,
      key="3/1",
      message=message,
  )
