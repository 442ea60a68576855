"""The validation split: subject-disjoint, deterministic, drawn from the training split."""

import numpy as np
import pytest

from codephys_jax import data as data_lib


class FakeVideos:
  """A VideoSource stand-in: videos as dicts with a subject_id (two videos per subject)."""

  name = "fake"
  split = "train"

  def __init__(self, subjects):
    self._videos = [
        {"video_id": f"{s}_{k}", "subject_id": s, "ppg": np.zeros(4)}
        for s in subjects
        for k in range(2)
    ]

  def __len__(self):
    return len(self._videos)

  def __getitem__(self, i):
    return self._videos[i]


SUBJECTS = [f"s{i:02d}" for i in range(16)]


def test_fraction_is_deterministic_and_seeded():
  a = data_lib.val_subjects_of(SUBJECTS, fraction=0.25)
  assert a == data_lib.val_subjects_of(list(reversed(SUBJECTS)) * 2, fraction=0.25)
  assert len(a) == 4 and set(a) <= set(SUBJECTS)
  # Not simply the first names in sorted order, and another seed holds out others.
  assert a != SUBJECTS[:4]
  assert data_lib.val_subjects_of(SUBJECTS, fraction=0.25, seed=1) != a
  assert len(data_lib.val_subjects_of(SUBJECTS, fraction=0.01)) == 1  # at least one


def test_explicit_subjects_and_errors():
  assert data_lib.val_subjects_of(SUBJECTS, fraction=0.5, explicit=("s03", "s07")) == ["s03", "s07"]
  with pytest.raises(ValueError, match="not subjects of the training split"):
    data_lib.val_subjects_of(SUBJECTS, fraction=0.2, explicit=("nobody",))
  with pytest.raises(ValueError, match=">= 2 training subjects"):
    data_lib.val_subjects_of(["only"], fraction=0.2)
  with pytest.raises(ValueError, match="fraction"):
    data_lib.val_subjects_of(SUBJECTS, fraction=1.0)


def test_train_val_videos_are_subject_disjoint(monkeypatch):
  videos = FakeVideos(SUBJECTS)
  monkeypatch.setattr(data_lib, "VideoSource", lambda builder, split: videos)
  config = {
      "train_split": "train",
      "eval_split": "val",
      "val": {"fraction": 0.25, "subjects": (), "seed": 0},
  }
  builder = type("B", (), {"name": "fake"})()
  train, val = data_lib.train_val_videos(builder, config)
  train_subjects = {v["subject_id"] for v in train}
  val_subjects = {v["subject_id"] for v in val}
  assert not train_subjects & val_subjects
  assert train_subjects | val_subjects == set(SUBJECTS)
  assert len(val) == 8 and len(train) == 24  # both videos of each held-out subject
  assert val_subjects == set(data_lib.val_subjects_of(SUBJECTS, fraction=0.25))
