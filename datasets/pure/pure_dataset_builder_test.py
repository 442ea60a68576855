"""PURE builder: dummy tree in the real layout, timestamp alignment, bad sequences."""

import json
import os
import shutil

import numpy as np
import pytest

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import rppg_builder
from codephys_jax._builders import builder_test_utils
from codephys_jax._builders import pure
from codephys_jax._builders import pure_dummy

DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")


class PureTest(builder_test_utils.BuilderTestCase):
  DATASET_CLASS = pure.Pure
  EXAMPLE_DIR = DUMMY
  SPLITS = {"train": 1, "test": 1, "full": 2}
  OVERLAPPING_SPLITS = ["train", "test", "full"]
  MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False
  SKIP_CHECKSUMS = True


def test_protocol_lists():
  assert sorted(pure.TRAIN_SUBJECTS + pure.TEST_SUBJECTS) == list(range(1, 11))


def test_parse_json_keeps_nanosecond_precision(tmp_path):
  base = 1392643993642815000  # beyond float64's exact integers
  doc = {
      "/FullPackage": [
          {
              "Timestamp": base + k,
              "Value": {"waveform": w, "pulseRate": 70, "o2saturation": 98, "signalStrength": 4},
          }
          for k, w in [(0, 10), (16666667, 12), (33333333, 11)]
      ],
      "/Image": [{"Timestamp": base + 1}, {"Timestamp": base + 33333334}],
  }
  path = tmp_path / "x.json"
  path.write_text(json.dumps(doc))
  ppg_ns, wave, frame_ns = pure.parse_json(str(path))
  assert ppg_ns.dtype == np.int64 and int(frame_ns[0] - ppg_ns[0]) == 1
  np.testing.assert_array_equal(wave, [10, 12, 11])
  np.testing.assert_array_equal(np.diff(frame_ns), [33333333])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return builder_test_utils.prepare_dummy("pure", data_dir, DUMMY)


def test_ppg_is_aligned_by_timestamps(prepared):
  videos = data_lib.VideoSource(prepared, "full")
  assert sorted(v["video_id"] for v in videos) == ["01-01", "02-01"]
  for ex in videos:
    name = ex["video_id"]
    seq = os.path.join(DUMMY, name)
    ppg_ns, wave, frame_ns = pure.parse_json(os.path.join(seq, f"{name}.json"))
    n = len(ex["frames"])
    assert ex["frames"].shape == (n, 32, 32, 3) and ex["fps"] == pytest.approx(30.0)
    # 40 labelled frames at ~10 fps span ~3.9 s: ~118 output frames at 30 fps;
    # 01-01's 41st frame lies past the oximeter's end and is trimmed.
    extra = name in pure_dummy.EXTRA_FRAME
    assert ex["trimmed_frames"] == int(extra) and ex["trimmed_labels"] == 0
    labelled = frame_ns[:-1] if extra else frame_ns
    span = (labelled[-1] - labelled[0]) / 1e9
    assert n == int(np.floor(span * 30 + 0.05)) + 1
    np.testing.assert_allclose(ex["timestamps"], np.arange(n) / 30.0, atol=1e-9)
    # The dummy logs two repeated PPG timestamps: the second of each is dropped.
    assert ex["repaired_timestamps"] == 2
    keep = np.ones(ppg_ns.size, bool)
    keep[1:] = np.diff(ppg_ns) > 0
    # Independent reference: the waveform interpolated at the output times,
    # both clocks taken relative to the first frame in integer nanoseconds.
    ref = np.interp(ex["timestamps"], (ppg_ns[keep] - frame_ns.min()) / 1e9, wave[keep])
    np.testing.assert_allclose(ex["ppg"], ref, rtol=1e-5, atol=1e-4)
    assert 40 < ex["hr"] < 180 and ex["valid"].mean() > 0.9


def _corrupt(tree, how):
  seq = tree / "02-01"
  js = seq / "02-01.json"
  frames = sorted((seq / "02-01").iterdir())
  if how == "missing_json":
    js.unlink()
  elif how == "bad_json":
    js.write_text("{not json")
  elif how == "no_waveform":
    doc = json.loads(js.read_text())
    del doc["/FullPackage"][3]["Value"]["waveform"]
    js.write_text(json.dumps(doc))
  elif how == "missing_frame":
    frames[5].unlink()
  elif how == "ppg_too_late":
    doc = json.loads(js.read_text())
    doc["/FullPackage"] = doc["/FullPackage"][120:]  # starts ~2 s after the first frame
    js.write_text(json.dumps(doc))
  elif how == "corrupt_png":
    frames[7].write_bytes(b"\x89PNG garbage")


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing_json", "02-01.json"),
        ("bad_json", "not valid JSON"),
        ("no_waveform", "waveform"),
        ("missing_frame", "listed but missing"),
        ("ppg_too_late", "outside it"),
        ("corrupt_png", "cannot decode"),
    ],
)
def test_bad_sequence_stops_with_named_error_and_writes_nothing(tmp_path, how, message):
  builder_test_utils.assert_bad_item_fails(
      tmp_path,
      "pure",
      source=os.path.join(DUMMY, "02-01"),
      dest="02-01",
      corrupt=_corrupt,
      how=how,
      key="02-01",
      message=message,
  )


def test_prepared_counts_record_trims_and_repairs(prepared):
  counts = dict(prepared.info.metadata["item_counts"])
  assert counts["trimmed"] == 1 and counts["repaired"] == 2
  alignment = dict(prepared.info.metadata["alignment"])
  assert alignment["01-01"] == {"trimmed_frames": 1, "trimmed_labels": 0, "repaired_timestamps": 2}


@pytest.mark.parametrize("name, frame", [("01-01", 25), ("02-01", 30)])  # after the gap
def test_pulse_marker_at_frame_k_lands_at_frame_k(name, frame):
  item = rppg_builder.Item(
      key=name, subject_id=name[:2], payload={"dir": os.path.join(DUMMY, name), "name": name}
  )
  got, expected, ex = builder_test_utils.marker_landing(item, pure.Pure.read_item, frame=frame)
  assert abs(got - expected) <= 0.5 and abs(expected - 3 * frame) <= 0.5  # 10 -> 30 fps


def test_unrepairable_clock_names_the_sequence(tmp_path):
  seq = tmp_path / "02-01"
  shutil.copytree(os.path.join(DUMMY, "02-01"), seq)
  doc = json.loads((seq / "02-01.json").read_text())
  package = doc["/FullPackage"]
  for e in package[40:80]:  # a clock that runs backwards for 40 samples
    e["Timestamp"] = package[39]["Timestamp"] - 1000
  (seq / "02-01.json").write_text(json.dumps(doc))
  source, labels = pure.read_sequence(str(seq), "02-01")
  with pytest.raises(alignment.PreparationError, match="02-01: label.*cannot be repaired"):
    alignment.validate_labels("02-01", labels)
