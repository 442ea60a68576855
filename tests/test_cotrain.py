"""Co-training: clips of a second dataset mixed into the training stream (`config.cotrain`)."""

import numpy as np
import pytest

from codephys_jax import data as data_lib
from codephys_jax import trainer
from codephys_jax.stages import base
from configs import common
from fake_videos import FakeVideos

SPEC = data_lib.PipelineSpec(batch_size=4, seed=3, num_threads=1, prefetch=1)


def _sources():
  real = data_lib.ClipSource(FakeVideos([80, 64]), clip_length=16)
  extra_videos = FakeVideos([48] * 5)
  for i, v in enumerate(extra_videos.videos):
    v["frames"] = np.full_like(v["frames"], i)  # flat frames: random ones never are
  extra = data_lib.ClipSource(extra_videos, clip_length=16)
  return real, extra


def _from_extra(batch) -> np.ndarray:
  """Which rows of a batch are clips of the flat-frame source."""
  f = batch["frames"].reshape(len(batch["frames"]), -1)
  return (f == f[:, :1]).all(axis=1)


@pytest.mark.parametrize("weight", [0.25, 0.5])
def test_mixture_draws_the_weighted_share_of_clips_from_each_source(weight):
  real, extra = _sources()
  mix = data_lib.ClipMixture((real, extra), (1.0 - weight, weight))
  it = data_lib.train_pipeline(mix, SPEC)
  rows = np.concatenate([_from_extra(next(it)) for _ in range(50)])
  assert rows.mean() == pytest.approx(weight, abs=0.02)
  # Every clip of the smaller-share source is visited, not a fixed few.
  seen = set()
  it = data_lib.train_pipeline(mix, SPEC)
  for _ in range(50):
    b = next(it)
    seen.update((int(f[0, 0, 0, 0]), int(s)) for f, s, e in zip(b["frames"], b["start"], _from_extra(b)) if e)
  assert len(seen) == len(extra)


def test_mixture_stream_is_deterministic_and_resumes_exactly():
  real, extra = _sources()
  mix = data_lib.ClipMixture((real, extra), (0.5, 0.5))
  it = data_lib.train_pipeline(mix, SPEC)
  batches = [next(it) for _ in range(4)]
  again = next(data_lib.train_pipeline(mix, SPEC))
  np.testing.assert_array_equal(again["frames"], batches[0]["frames"])
  resumed = next(data_lib.train_pipeline(mix, SPEC, start_step=3))
  np.testing.assert_array_equal(resumed["frames"], batches[3]["frames"])
  np.testing.assert_array_equal(resumed["ppg"], batches[3]["ppg"])


def test_single_source_stream_is_unchanged_by_the_mixture_code():
  real, _ = _sources()
  # The order a plain source had before mixtures existed: shuffle(seed).repeat().
  import grain  # pylint: disable=g-import-not-at-top

  order = grain.MapDataset.source(real).shuffle(seed=SPEC.seed).repeat(None)
  b = next(data_lib.train_pipeline(real, SPEC))
  np.testing.assert_array_equal(b["frames"], np.stack([order[i]["frames"] for i in range(4)]))


def test_mixture_validation():
  real, extra = _sources()
  with pytest.raises(ValueError, match=">= 2 sources"):
    data_lib.ClipMixture((real,), (1.0,))
  with pytest.raises(ValueError, match="one weight each"):
    data_lib.ClipMixture((real, extra), (1.0,))
  with pytest.raises(ValueError, match="positive"):
    data_lib.ClipMixture((real, extra), (1.0, 0.0))


def test_device_input_refuses_a_mixture_and_auto_reads_it_on_the_host():
  real, extra = _sources()
  mix = data_lib.ClipMixture((real, extra), (0.5, 0.5))
  mesh = trainer.make_mesh()
  kw = dict(batch_size=8, seed=0, keys=("frames", "ppg"), mesh=mesh)
  with pytest.raises(ValueError, match="co-training mixture"):
    base.train_iterator(mix, None, input_pipeline="device", **kw)
  b = next(base.train_iterator(mix, None, input_pipeline="auto", **kw)(0))
  assert set(b) == {"frames", "ppg"} and b["frames"].shape[1:] == (16, 8, 8, 3)


def _config(**cotrain):
  c = common.base(dataset="ubfc_rppg", size=16, clip_length=128)
  c.manual_dir = "/data/ubfc"
  c.data_dir = "/data/tfds"
  c.preprocess.roi = "landmark_patches"
  c.cotrain.update(cotrain)
  return c


def test_cotrain_is_off_by_default():
  assert data_lib.cotrain_videos(common.base()) is None


def test_cotrain_videos_use_the_runs_preprocess_and_the_cotrain_dataset(monkeypatch):
  calls = {}

  def fake_load(name, **kwargs):
    calls["load"] = (name, kwargs)
    return "builder"

  def fake_open(builder, split):
    calls["open"] = (builder, split)
    return FakeVideos([40, 40])

  monkeypatch.setattr(data_lib, "load_builder", fake_load)
  monkeypatch.setattr(data_lib, "open_split", fake_open)
  c = _config(dataset="synthetic_rppg", weight=0.3)
  c.cotrain.dataset_options = {"codec_qp": (0.0, 32.0), "num_train": 64}
  videos, weight = data_lib.cotrain_videos(c)
  assert weight == 0.3 and len(videos) == 2
  name, kwargs = calls["load"]
  assert name == "synthetic_rppg"
  assert kwargs["preprocess"] == dict(c.preprocess) and kwargs["preprocess"]["roi"] == "landmark_patches"
  assert kwargs["data_dir"] == "/data/tfds" and kwargs["manual_dir"] is None
  assert kwargs["options"] == {"codec_qp": (0.0, 32.0), "num_train": 64}
  assert calls["open"] == ("builder", "train")


class Subjects:
  """Videos that only carry a subject id (what the refusal reads)."""

  def __init__(self, ids):
    self.ids = list(ids)

  def __len__(self):
    return len(self.ids)

  def __getitem__(self, i):
    return {"subject_id": self.ids[i]}


@pytest.mark.parametrize(
    "cotrain, match",
    [
        (dict(dataset="synthetic_rppg", weight=0.0), "cotrain.weight"),
        (dict(dataset="synthetic_rppg", weight=1.0), "cotrain.weight"),
        (dict(dataset="synthetic_rppg", split="test"), "test split"),
    ],
)
def test_cotrain_refusals(monkeypatch, cotrain, match):
  monkeypatch.setattr(data_lib, "load_builder", lambda *a, **k: pytest.fail("loaded"))
  with pytest.raises(ValueError, match=match):
    data_lib.cotrain_videos(_config(**cotrain))


def _same_dataset(monkeypatch, cotrain_ids):
  """The run: validation subjects 3, 5; compared on test subjects 9, 11."""
  monkeypatch.setattr(data_lib, "load_builder", lambda name, **k: ("builder", k["manual_dir"]))
  monkeypatch.setattr(
      data_lib, "train_val_videos", lambda b, c: (Subjects(["1", "2"]), Subjects(["3", "5"]))
  )
  splits = {"train": Subjects(cotrain_ids), "test": Subjects(["9", "11"])}
  monkeypatch.setattr(data_lib, "open_split", lambda b, spec: splits[spec])


@pytest.mark.parametrize(
    "manual_dir, options",
    [
        ("/data/ubfc", {}),
        ("/data/ubfc/", {}),  # the same tree spelt otherwise
        ("/data/ubfc", {"skip_bad_items": False}),  # the same prepared data
        ("/data/other", {}),  # another tree with the run's subject ids
    ],
)
def test_cotrain_refuses_the_runs_validation_and_test_subjects(monkeypatch, manual_dir, options):
  _same_dataset(monkeypatch, ["1", "2", "3", "9"])
  c = _config(dataset="ubfc_rppg", manual_dir=manual_dir)
  c.cotrain.dataset_options = options
  with pytest.raises(ValueError, match=r"validates or tests on: \['3', '9'\]"):
    data_lib.cotrain_videos(c)


def test_cotrain_on_other_subjects_of_the_same_dataset_is_allowed(monkeypatch):
  _same_dataset(monkeypatch, ["21", "22"])
  videos, _ = data_lib.cotrain_videos(_config(dataset="ubfc_rppg", manual_dir="/data/other"))
  assert len(videos) == 2


def test_training_clips_mix_the_run_and_the_cotrain_clips_at_the_weight(monkeypatch):
  real, extra = FakeVideos([80, 64]), FakeVideos([48] * 5)
  monkeypatch.setattr(data_lib, "train_val_videos", lambda b, c: (real, None))
  monkeypatch.setattr(data_lib, "cotrain_videos", lambda c, b: (extra, 0.25))
  c = _config()
  c.clip_length = 16
  mix, augment = base.training_clips(c, "builder", 16)
  assert augment is None
  assert isinstance(mix, data_lib.ClipMixture) and mix.weights == (0.75, 0.25)
  assert mix.sources[0]._videos is real and mix.sources[1]._videos is extra
  monkeypatch.setattr(data_lib, "cotrain_videos", lambda c, b: None)
  plain, _ = base.training_clips(c, "builder", 16)
  assert isinstance(plain, data_lib.ClipSource)


def test_mixture_shards_per_process_into_the_global_batch():
  real, extra = _sources()
  mix = data_lib.ClipMixture((real, extra), (0.5, 0.5))
  spec = data_lib.PipelineSpec(batch_size=8, seed=1, num_threads=1, prefetch=1)
  whole = next(data_lib.train_pipeline(mix, spec))
  parts = [
      next(data_lib.train_pipeline(mix, spec, process_index=p, process_count=2)) for p in (0, 1)
  ]
  np.testing.assert_array_equal(np.concatenate([p["frames"] for p in parts]), whole["frames"])
