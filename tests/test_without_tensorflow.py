"""Training, evaluation, preparation and TensorBoard events without TensorFlow.

The smoke path runs in a subprocess where TensorFlow is hidden
(tests/no_tensorflow/sitecustomize.py), whether or not it is installed here: the
session's `tiny_run` fixture (tests/conftest.py), whose run directory
tests/test_train_lib.py checks as well. The preparation tests run in-process
with TFDS's shuffler cut off from TensorFlow.
"""

import logging
import os

import numpy as np
import pytest
from tensorflow_datasets.core import shuffle

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import tb_writer
from codephys_jax import tfds_spill
from helpers import read_events as _read_events


def test_smoke_path_runs_with_tensorflow_hidden(tiny_run):
  seen = tiny_run.seen
  assert seen["tensorflow_modules"] == []
  # train 2 + test 1 + test_degraded 1 examples, every one through the on-disk buckets.
  assert seen["spilled_records"] == 4
  assert seen["stages"] == ["codebook", "codephys", "physnet", "results"]
  rows = {(r["method"], r["condition"]) for r in seen["table"]}
  assert rows == {(m, c) for m in ("codephys", "physnet", "pos") for c in ("clean", "degraded")}
  # One event file per stage, written by tb_writer and read back by TensorBoard.
  assert sorted(os.path.dirname(p) for p in seen["events"]) == ["codebook", "codephys", "physnet"]
  for path, scalars in seen["events"].items():
    steps = tiny_run.config[os.path.dirname(path)].num_steps  # codebook 4, video stages 2
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, steps + 1)), path
    assert all(np.isfinite(v) for _, v in scalars["train/loss"]), path
    # The rate: at the last step (always), never at step 1 (the clock starts there);
    # Stage I's 4 steps may pass the 30 s report interval on a busy machine.
    reported = [s for s, _ in scalars["steps_per_sec"]]
    assert reported[-1] == steps and 1 not in reported, (path, reported)
    assert all(v > 0 for _, v in scalars["steps_per_sec"]), path
  # Evaluated every 2 steps.
  assert [s for s, _ in seen["events"][_stage_file(seen, "codebook")]["eval/recon_mse"]] == [2, 4]
  assert [s for s, _ in seen["events"][_stage_file(seen, "codephys")]["eval/mae"]] == [2]


def _stage_file(seen, stage):
  (path,) = [p for p in seen["events"] if os.path.dirname(p) == stage]
  return path


def test_metric_writer_round_trip(tmp_path, caplog):
  with caplog.at_level(logging.INFO):
    with tb_writer.MetricWriter(str(tmp_path)) as writer:
      writer.write_scalars(1, {"train/loss": np.float32(0.5), "lr": np.asarray([1e-3])})
      writer.write_scalars(3, {"train/loss": 0.25})
      with pytest.raises(ValueError, match="'bad' is not a scalar"):
        writer.write_scalars(4, {"bad": np.zeros(3)})
  assert _read_events(str(tmp_path)) == {
      "train/loss": [(1, 0.5), (3, 0.25)],
      "lr": [(1, pytest.approx(1e-3))],
  }
  assert "[3] train/loss=0.25" in caplog.text
  # Processes other than the first only log: no second set of events.
  logdir = tmp_path / "other"
  with tb_writer.MetricWriter(str(logdir), just_logging=True) as writer:
    writer.write_scalars(1, {"train/loss": 1.0})
  assert not logdir.exists()


def test_progress_report_rate_and_eta(tmp_path):
  now = [100.0]
  with tb_writer.MetricWriter(str(tmp_path)) as writer:
    report = tb_writer.ProgressReport(
        num_train_steps=1000, writer=writer, every_secs=30, name="codephys", clock=lambda: now[0]
    )
    report(1)  # starts the clock (this step includes compilation)
    for step in range(2, 12):
      now[0] += 1.0
      report(step)  # 10 s after the first step: no report yet
    assert report.last_message is None
    now[0] += 20.0
    report(12)  # 11 steps in 30 s
    assert report.last_message == "codephys: 0.4 steps/s, 1.2% (12/1000), ETA 44m"
    now[0] += 3.0
    report(1000)  # the last step is always reported
  events = _read_events(str(tmp_path))
  assert [s for s, _ in events["steps_per_sec"]] == [12, 1000]
  assert events["steps_per_sec"][0][1] == pytest.approx(11 / 30)
  assert events["steps_per_sec"][1][1] == pytest.approx(988 / 3)
  assert events["uptime"] == [(12, pytest.approx(30.0)), (1000, pytest.approx(33.0))]
  assert tb_writer.format_duration(123456.7) == "1d10h17m"


class _NoTensorFlow:
  """Stands in for TFDS's lazy `tf` module: any use fails, as without TensorFlow."""

  def __getattr__(self, name):
    raise ModuleNotFoundError(f"No module named 'tensorflow' (used tf.{name})")


_OPTIONS = dict(num_train=2, num_test=1, duration_s=2.0, width=160, height=120, degraded_types=())


def _prepare(data_dir):
  return data_lib.load_builder(
      "synthetic_rppg", data_dir=str(data_dir), preprocess={"size": 16}, options=_OPTIONS
  )


def _files(root):
  return sorted(os.path.relpath(os.path.join(r, f), root) for r, _, fs in os.walk(root) for f in fs)


def _spill_every_example_without_tf(monkeypatch) -> list:
  """TFDS's shuffler with `tf` unusable and a zero memory buffer; returns the spilled keys."""
  monkeypatch.setattr(shuffle, "tf", _NoTensorFlow())
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 0)  # spill every example
  spilled = []
  add = tfds_spill.SpillBucket.add
  monkeypatch.setattr(
      tfds_spill.SpillBucket,
      "add",
      lambda self, key, data: (spilled.append(key), add(self, key, data)),
  )
  return spilled


def test_spilled_preparation_equals_in_memory_preparation(tmp_path, monkeypatch):
  in_memory = _prepare(tmp_path / "memory")
  spilled = _spill_every_example_without_tf(monkeypatch)
  on_disk = _prepare(tmp_path / "spill")
  assert len(spilled) == 3
  assert shuffle._Bucket is tfds_spill._TFDS_BUCKET  # restored after preparation
  for split, n in (("train", 2), ("test", 1)):
    a = data_lib.VideoSource(in_memory, split)
    b = data_lib.VideoSource(on_disk, split)
    assert len(a) == len(b) == n
    for x, y in zip(a, b):  # same examples in the same (TFDS-shuffled) order
      assert x["video_id"] == y["video_id"]
      for key in ("frames", "ppg", "rgb", "timestamps"):
        np.testing.assert_array_equal(x[key], y[key])
  assert on_disk.info.splits["train"].shard_lengths == [2]
  # No bucket file is left behind, and the layout is the in-memory one.
  spill_root = str(tmp_path / "spill")
  assert not [f for f in _files(spill_root) if "bucket_" in f]
  assert [f.split(os.sep)[-1] for f in _files(spill_root)] == [
      f.split(os.sep)[-1] for f in _files(str(tmp_path / "memory"))
  ]


def test_failed_spilled_preparation_leaves_nothing(tmp_path, monkeypatch):
  spilled = _spill_every_example_without_tf(monkeypatch)
  build = alignment.build_example

  def build_example(key, *args, **kwargs):
    if key == "train_001":  # after train_000 went to a bucket file
      raise alignment.PreparationError(f"{key}: unreadable frame 7")
    return build(key, *args, **kwargs)

  monkeypatch.setattr(alignment, "build_example", build_example)
  with pytest.raises(alignment.PreparationError, match="train_001: unreadable frame 7"):
    _prepare(tmp_path / "tfds")
  assert len(spilled) == 1
  # Nothing but the (empty) lock file that preparations in one data_dir share.
  left = _files(str(tmp_path / "tfds"))
  assert [os.path.basename(f) for f in left] == [".synthetic_rppg.prepare.lock"], left
  assert shuffle._Bucket is tfds_spill._TFDS_BUCKET
