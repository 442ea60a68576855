"""Subject split specs and the cross-validation instrument (codephys_jax.crossval)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from codephys_jax import comparison
from codephys_jax import crossval
from codephys_jax import data as data_lib
from codephys_jax import metrics as metrics_lib
from configs import ubfc_intra


def test_split_spec_round_trip():
  spec = data_lib.subjects_split("full", [3, "5", 11])
  assert spec == "full[subjects=3,5,11]"
  assert data_lib.parse_split(spec) == ("full", ("3", "5", "11"))
  assert data_lib.parse_split("test") == ("test", None)
  assert data_lib.split_dirname(spec) == "full-subjects-3-5-11"
  assert data_lib.split_dirname("test") == "test"
  for bad in ("full[3,5]", "full[subjects=]", "full[subjects=3"):
    with pytest.raises(ValueError, match="split"):
      data_lib.parse_split(bad)
  with pytest.raises(ValueError, match="subject ids"):
    data_lib.subjects_split("full", ["3,5"])


@pytest.mark.parametrize("n, k", [(8, 4), (8, 8), (7, 3), (5, 2)])
def test_folds_partition_the_subjects(n, k):
  subjects = [str(s) for s in range(1, n + 1)]
  folds = crossval.make_folds(subjects, num_folds=k, seed=0)
  flat = [s for f in folds for s in f]
  assert sorted(flat, key=int) == subjects  # every subject tested exactly once
  assert max(map(len, folds)) - min(map(len, folds)) <= 1
  # Deterministic and independent of the order the subjects are listed in.
  assert crossval.make_folds(subjects[::-1], num_folds=k, seed=0) == folds
  if k < n:  # the seed changes the assignment
    assert any(crossval.make_folds(subjects, num_folds=k, seed=s) != folds for s in range(1, 6))
  with pytest.raises(ValueError, match="num_folds"):
    crossval.make_folds(subjects, num_folds=n + 1)


def test_fold_config_keeps_test_subjects_out_of_training():
  c = ubfc_intra.get_config("smoke")
  f = crossval.fold_config(c, split="full", train=["1", "3", "42"], val=["3"], test=["11", "45"])
  assert f.train_split == "full[subjects=1,3,42]"
  assert tuple(f.val.subjects) == ("3",)
  assert dict(f.compare.splits) == {"clean": "full[subjects=11,45]"}
  assert c.train_split == "train"  # the given config is not changed
  with pytest.raises(ValueError, match="also training"):
    crossval.fold_config(c, split="full", train=["1", "11"], val=["1"], test=["11"])
  with pytest.raises(ValueError, match="not training"):
    crossval.fold_config(c, split="full", train=["1", "3"], val=["42"], test=["11"])


def test_crossval_on_dummy_ubfc(tmp_path, monkeypatch):
  """Two folds on the 5-subject dummy tree: every subject tested once, training
  sees only the other subjects (validation held out of them), and the pooled
  metrics are those of the pooled rows. Training itself is replaced by a record of
  what it would read (the stages have their own end-to-end tests); the comparison
  (POS on the fold's subjects) runs for real."""
  c = ubfc_intra.get_config("smoke")
  c.data_dir = str(tmp_path / "tfds")
  c.stages = ()
  seen = []

  def fake_train(cfg, workdir):
    builder = data_lib.load_builder(cfg.dataset, **data_lib.builder_kwargs(cfg))
    train, val = data_lib.train_val_videos(builder, cfg)
    seen.append(
        (sorted(v["subject_id"] for v in train), sorted(v["subject_id"] for v in val), workdir)
    )
    return {"results": comparison.compare(cfg, workdir)}

  monkeypatch.setattr(crossval.train_lib, "train_and_evaluate", fake_train)
  workdir = str(tmp_path / "cv")
  out = crossval.run(c, workdir, num_folds=2, num_val=1)
  with open(os.path.join(workdir, "folds.json")) as f:
    plan = json.load(f)["folds"]
  assert sorted((s for fold in plan for s in fold["test"]), key=int) == ["1", "3", "11", "42", "45"]
  assert len(seen) == 2
  for fold, (train, val, fold_dir) in zip(plan, seen):
    assert not set(fold["test"]) & set(fold["train"])
    assert len(fold["val"]) == 1
    assert sorted(train + val) == sorted(fold["train"]) and val == fold["val"]
    assert fold_dir.startswith(workdir)
  with open(os.path.join(workdir, "per_subject.csv")) as f:
    rows = list(csv.DictReader(f))
  assert {r["method"] for r in rows} == {"pos"}
  assert sorted((r["subject"] for r in rows), key=int) == ["1", "3", "11", "42", "45"]
  for r in rows:
    assert r["subject"] in plan[int(r["fold"])]["test"]
  m = metrics_lib.hr_metrics([float(r["hr_pred"]) for r in rows], [float(r["hr_ref"]) for r in rows])
  np.testing.assert_allclose(out["pooled"]["pos"]["mae"], m["mae"])
  np.testing.assert_allclose(out["pooled"]["pos"]["rmse"], m["rmse"])
  for r in rows:  # the reference's half-power range holds its own HR
    assert float(r["ref_range_lo"]) <= float(r["hr_ref"]) <= float(r["ref_range_hi"])
  table = open(os.path.join(workdir, "crossval.md")).read()
  assert "| pos |" in table and "| 45 |" in table
  assert "reference half-power range" in table
  # A second call reads the finished folds instead of training again.
  again = crossval.run(c, workdir, num_folds=2, num_val=1)
  assert len(seen) == 2
  assert again["pooled"] == out["pooled"]


def test_open_split_names_missing_subjects(tmp_path):
  c = ubfc_intra.get_config("smoke")
  c.data_dir = str(tmp_path / "tfds")
  builder = data_lib.load_builder(c.dataset, **data_lib.builder_kwargs(c))
  sub = data_lib.open_split(builder, "full[subjects=3,45]")
  assert sorted(v["subject_id"] for v in sub) == ["3", "45"]
  with pytest.raises(ValueError, match=r"no subject\(s\) \['7'\]"):
    data_lib.open_split(builder, "full[subjects=3,7]")


def test_missing_comparison_split_fails_before_training(tmp_path):
  c = ubfc_intra.get_config("smoke")
  c.data_dir = str(tmp_path / "tfds")
  c.compare.splits = {"clean": "validation"}
  with pytest.raises(ValueError, match=r"no videos in split 'validation'.*crossval"):
    crossval.train_lib.train_and_evaluate(c, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "codebook")


def test_format_subjects_with_and_without_reference_range():
  """Rows read from per_video.csv files of older runs have no range: the cell is
  left empty instead of failing."""
  rows = [
      dict(subject="9", video_id="subject9", fold=0, method="pos", hr_pred=95.8,
           hr_ref=105.5, ref_range_lo=101.1, ref_range_hi=109.0),
      dict(subject="3", video_id="subject3", fold=1, method="pos", hr_pred=92.3,
           hr_ref=92.3, ref_range_lo=None, ref_range_hi=None),
  ]
  lines = crossval.format_subjects(rows).splitlines()
  assert lines[0].startswith("| subject | fold | reference HR | reference half-power range | pos")
  assert lines[2] == "| 3 | 1 | 92.3 |  | 92.3 |"
  assert lines[3] == "| 9 | 0 | 105.5 | 101.1-109.0 | 95.8 |"
