"""Shared label alignment rules and the builders' module names (issue 8 item 1, issue 11).

The per-dataset alignment checks (a pulse marker at frame k lands at frame k,
quirky dummy trees) live next to each builder in `datasets/<name>/*_test.py`;
here are the shared rules, the synthetic builder's marker check, and the check
that no builder is ever imported as the top-level module `datasets`.
"""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax._builders import builder_test_utils

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_trim_bound_is_two_frames_or_half_a_percent():
  assert alignment.trim_bound(120) == 2
  assert alignment.trim_bound(1802) == 9
  assert alignment.trim_bound(10_000) == 50


def test_repair_keeps_the_first_of_a_repeat_and_drops_backward_steps():
  t = np.array([0.0, 1.0, 1.0, 2.0, 1.5, 3.0] + list(range(4, 40)), dtype=float)
  keep, dropped = alignment.repair_timestamps("x.json", t)
  assert dropped == 2
  np.testing.assert_array_equal(np.flatnonzero(~keep), [2, 4])
  assert np.all(np.diff(t[keep]) > 0)


@pytest.mark.parametrize(
    "times, message",
    [
        ([0.0, 1.0, np.nan, 3.0], "non-finite"),
        (list(range(20)) + [5.0] * 5, "cannot be repaired: 5 of 25"),
        ([1.0, 1.0], "cannot be repaired"),
    ],
)
def test_unrepairable_clocks_are_errors_naming_the_file(times, message):
  with pytest.raises(alignment.PreparationError, match="x.json.*" + re.escape(message)):
    alignment.repair_timestamps("x.json", np.array(times))


def test_validate_labels_repairs_timestamped_labels_only():
  times = np.array([0.0, 0.1, 0.1, 0.2, 0.3] + [0.3 + 0.1 * i for i in range(1, 40)])
  ppg = np.sin(np.arange(times.size))
  fixed, repaired = alignment.validate_labels("v", alignment.RawLabels(times=times, ppg=ppg))
  assert repaired == 1 and fixed.times.size == times.size - 1
  np.testing.assert_array_equal(fixed.ppg, np.delete(ppg, 2))
  # Per-frame labels: the (logging) clock is not needed, so not checked or changed.
  same, none = alignment.validate_labels(
      "v", alignment.RawLabels(times=times[::-1], ppg=ppg, per_frame=True)
  )
  assert none == 0 and same.times is not None and same.ppg is ppg


def test_synthetic_pulse_marker_at_frame_k_lands_at_frame_k():
  cls = data_lib.builder_class("synthetic_rppg")
  builder = cls(
      config=cls.make_config(
          options={
              "num_train": 1,
              "num_test": 1,
              "duration_s": 4.0,
              "width": 160,
              "height": 120,
              "degraded_types": (),
          }
      ),
      data_dir="/nonexistent",
  )
  item = builder.list_items(None)[0]
  got, position, ex = builder_test_utils.marker_landing(item, cls.read_item, frame=57)
  assert position == pytest.approx(57) and got == 57
  assert (ex["trimmed_frames"], ex["trimmed_labels"], ex["repaired_timestamps"]) == (0, 0, 0)


_IMPORTS_DATASETS = re.compile(r"^\s*(from\s+datasets(\.|\s)|import\s+datasets\b)", re.M)


def test_no_module_imports_the_top_level_name_datasets():
  offenders = []
  for path in ROOT.rglob("*.py"):
    if ".venv" in path.parts or "dummy_data" in path.parts:
      continue
    if _IMPORTS_DATASETS.search(path.read_text()):
      offenders.append(str(path.relative_to(ROOT)))
  assert offenders == []
  # Nor is the folder a package a test runner could import by that name.
  assert not list((ROOT / "datasets").rglob("__init__.py"))
  assert not any(v.startswith("datasets.") for v in data_lib.DATASETS.values())


_WITH_FOREIGN_DATASETS = r"""
import sys, types
fake = types.ModuleType("datasets")
fake.__version__ = "2.19.0"  # as if Hugging Face `datasets` were imported first
fake.load_dataset = lambda *a, **k: None
sys.modules["datasets"] = fake

from codephys_jax import alignment
from codephys_jax import data as data_lib
from codephys_jax import preprocess as preprocess_lib

for name in data_lib.DATASETS:
  cls = data_lib.builder_class(name)
  assert cls.__module__ == "codephys_jax._builders." + name, cls.__module__
ubfc = data_lib.builder_class("ubfc_rppg")
item = ubfc(config=ubfc.make_config(manual_dir=sys.argv[1]), data_dir=sys.argv[2]
            ).list_items(sys.argv[1])[0]
source, labels = ubfc.read_item(item)
with source:
  ex = alignment.build_example(item.key, item.subject_id, source, labels,
                               preprocess_lib.PreprocessConfig(size=8))
assert sys.modules["datasets"] is fake and not hasattr(fake, "ubfc_rppg")
print("ok", item.key, len(ex["ppg"]))
"""


def test_builders_load_and_work_when_another_datasets_module_is_imported(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  dummy = ROOT / "datasets" / "ubfc_rppg" / "dummy_data"
  done = subprocess.run(
      [sys.executable, "-c", _WITH_FOREIGN_DATASETS, str(dummy), str(tmp_path)],
      cwd=tmp_path,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.split() == ["ok", "subject1", "120"]
