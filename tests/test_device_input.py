"""Device-side training input (codephys_jax.device_input): clips, augmentation, determinism,
resume and data-parallel sharding (8 virtual CPU devices from conftest)."""

import dataclasses

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codephys_jax import augment
from codephys_jax import data as data_lib
from codephys_jax import device_input
from codephys_jax import trainer
from configs import common
from fake_videos import FakeVideos

FPS = 30.0


def _shifted_sine(index: int, n: int) -> np.ndarray:
  # A different period and offset per video, so clips from different videos differ.
  return np.sin(np.arange(n) / (3.0 + index)) + 0.1 * index


def _videos(lengths, size=8):
  return FakeVideos(lengths, size, ppg=_shifted_sine)


def _mesh(n):
  return trainer.make_mesh(devices=jax.devices()[:n])


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def test_plain_batches_are_clip_source_clips_in_a_per_epoch_permutation():
  clips = data_lib.ClipSource(_videos([100, 50, 70]), clip_length=20, stride=10)
  n = len(clips)
  data = device_input.ResidentClips(clips, _mesh(1))
  make = device_input.iterator_factory(data, batch_size=4, seed=3)
  it = make(0)
  seen = []
  for _ in range(-(-2 * n // 4)):  # two epochs
    batch = _host(next(it))
    for frames, ppg in zip(batch["frames"], batch["ppg"]):
      # Which clip is it? Exactly one ClipSource item must match, frames and label.
      hits = [i for i in range(n) if np.array_equal(clips[i]["frames"], frames)]
      assert len(hits) == 1
      np.testing.assert_allclose(ppg, clips[hits[0]]["ppg"], rtol=1e-5, atol=1e-6)
      seen.append(hits[0])
  # Each epoch visits every clip once, in a different order.
  assert sorted(seen[:n]) == list(range(n)) and sorted(seen[n : 2 * n]) == list(range(n))
  assert seen[:n] != seen[n : 2 * n]


def test_same_seed_same_batches_resume_matches_and_seed_changes_them():
  # Same videos, recipe and batch as the 8-device test below: one compilation.
  cfg = augment.AugmentConfig()
  t = 16
  clips = data_lib.ClipSource(
      _videos([80, 60, 40]), clip_length=t, source_length=augment.required_source_length(cfg, t)
  )
  data = device_input.ResidentClips(clips, _mesh(1))
  make = device_input.iterator_factory(data, batch_size=8, seed=0, augment=cfg)
  it = make(0)
  run = [_host(next(it)) for _ in range(5)]
  again = make(0)
  resumed = make(3)
  for k in range(5):
    b = _host(next(again))
    np.testing.assert_array_equal(b["frames"], run[k]["frames"])
    np.testing.assert_array_equal(b["ppg"], run[k]["ppg"])
  for k in (3, 4):
    b = _host(next(resumed))
    np.testing.assert_array_equal(b["frames"], run[k]["frames"])
    np.testing.assert_array_equal(b["ppg"], run[k]["ppg"])
  other = _host(next(device_input.iterator_factory(data, batch_size=8, seed=1, augment=cfg)(0)))
  assert not np.array_equal(other["frames"], run[0]["frames"])
  b = run[0]
  assert b["frames"].shape == (8, t, 8, 8, 3) and b["frames"].dtype == np.uint8
  assert b["ppg"].shape == (8, t) and b["ppg"].dtype == np.float32
  np.testing.assert_allclose(np.abs(b["ppg"]).max(axis=1), 1.0, atol=1e-5)


def test_eight_devices_give_the_batches_of_one_device_split_along_the_batch():
  cfg = augment.AugmentConfig()
  t = 16
  clips = data_lib.ClipSource(
      _videos([80, 60, 40]), clip_length=t, source_length=augment.required_source_length(cfg, t)
  )
  out = []
  for n in (1, 8):
    mesh = _mesh(n)
    data = device_input.ResidentClips(clips, mesh)
    it = device_input.iterator_factory(data, batch_size=8, seed=5, augment=cfg)(2)
    batch = next(it)
    assert batch["frames"].sharding.is_equivalent_to(trainer.batch_sharding(mesh), 5)
    # trainer.shard_batch passes such a global batch through untouched.
    assert trainer.shard_batch(mesh, batch) is batch
    out.append(_host(batch))
  np.testing.assert_array_equal(out[0]["frames"], out[1]["frames"])
  np.testing.assert_array_equal(out[0]["ppg"], out[1]["ppg"])
  with pytest.raises(ValueError, match="not divisible"):
    device_input.iterator_factory(device_input.ResidentClips(clips, _mesh(8)), batch_size=4, seed=0)


def test_identity_augmentation_is_the_plain_clip():
  clips = data_lib.ClipSource(_videos([64, 48]), clip_length=16)
  data = device_input.ResidentClips(clips, _mesh(1))
  plain = _host(next(device_input.iterator_factory(data, batch_size=4, seed=0)(1)))
  ident = _host(
      next(
          device_input.iterator_factory(
              data, batch_size=4, seed=0, augment=augment.AugmentConfig.identity()
          )(1)
      )
  )
  np.testing.assert_array_equal(plain["frames"], ident["frames"])
  np.testing.assert_allclose(plain["ppg"], ident["ppg"], atol=1e-6)


def test_speed_resampling_moves_frames_and_label_together():
  # Frames whose grey level is the frame number, a PPG that is the frame number too:
  # after resampling, label and frames must still agree position by position.
  n, t = 120, 16
  videos = _videos([n])
  ramp = np.arange(n, dtype=np.float32)
  videos.videos[0]["frames"] = np.broadcast_to(
      np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 8, 8, 3)
  ).copy()
  videos.videos[0]["ppg"] = ramp
  cfg = augment.AugmentConfig(
      flip_prob=0.0,
      illumination_std=0.0,
      noise_std=0.0,
      speed_range=(0.6, 1.4),
      crop_scale=(1.0, 1.0),
  )
  clips = data_lib.ClipSource(
      videos, clip_length=t, source_length=augment.required_source_length(cfg, t)
  )
  data = device_input.ResidentClips(clips, _mesh(1))
  batch = _host(next(device_input.iterator_factory(data, batch_size=8, seed=0, augment=cfg)(0)))
  speeds = []
  for frames, ppg in zip(batch["frames"], batch["ppg"]):
    grey = frames[:, 0, 0, 0].astype(np.float64)
    steps = np.diff(grey)
    speeds.append(steps.mean())
    assert 0.5 <= steps.mean() <= 1.5
    # The label is the re-normalised position ramp: the frames' grey level (the
    # position rounded to uint8) is linear in it up to that rounding.
    fit = np.polyfit(ppg, grey, 1)
    assert np.abs(np.polyval(fit, ppg) - grey).max() <= 0.55
  assert np.ptp(speeds) > 0.1  # speeds differ between clips


def test_resize_matrix_matches_opencv_crop_and_flip():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
  for top, left, side in ((0, 0, 12), (2, 3, 7), (5, 1, 6)):
    for flip in (False, False, True):
      my = device_input.resize_matrix(12, jnp.int32(top), jnp.int32(side), jnp.asarray(False))
      mx = device_input.resize_matrix(12, jnp.int32(left), jnp.int32(side), jnp.asarray(flip))
      got = np.einsum("ih,hwc,jw->ijc", np.asarray(my), img.astype(np.float32), np.asarray(mx))
      want = cv2.resize(
          img[top : top + side, left : left + side], (12, 12), interpolation=cv2.INTER_LINEAR
      ).astype(np.float32)
      if flip:
        want = want[:, ::-1]
      assert np.abs(got - want).max() <= 1.0


def test_augmented_frames_have_the_configured_noise_and_offset():
  clips = data_lib.ClipSource(_videos([64]), clip_length=16)
  n = 16
  flat = np.full((64, n, n, 3), 128, np.uint8)
  clips._videos.videos[0]["frames"] = flat  # noqa: SLF001 - constant grey video
  cfg = augment.AugmentConfig(
      flip_prob=0.5,
      illumination_std=10.0,
      noise_std=2.0,
      speed_range=(1.0, 1.0),
      crop_scale=(0.5, 1.0),
  )
  data = device_input.ResidentClips(clips, _mesh(1))
  batch = _host(next(device_input.iterator_factory(data, batch_size=32, seed=0, augment=cfg)(0)))
  x = batch["frames"].astype(np.float64)
  offsets = x.mean(axis=(1, 2, 3, 4)) - 128
  assert 5 < offsets.std() < 16  # N(0, 10) over 32 clips
  within = (x - x.mean(axis=(1, 2, 3, 4), keepdims=True)).std()
  assert 1.6 < within < 2.4  # N(0, 2) pixel noise, rounded


def test_degradations_and_budget_are_refused_with_a_clear_error():
  clips = data_lib.ClipSource(_videos([64]), clip_length=16)
  data = device_input.ResidentClips(clips, _mesh(1))
  cfg = augment.AugmentConfig(speed_range=(1.0, 1.0), degradations=("jpeg",), degradation_prob=0.5)
  with pytest.raises(device_input.DoesNotFit, match="input_pipeline=.host."):
    device_input.iterator_factory(data, batch_size=4, seed=0, augment=cfg)
  with pytest.raises(ValueError, match="budget"):
    device_input.ResidentClips(clips, _mesh(1), budget_bytes=1000)


def test_ppg_only_stage_keeps_no_frames():
  clips = data_lib.ClipSource(_videos([64, 40]), clip_length=16)
  data = device_input.ResidentClips(clips, _mesh(1), keys=("ppg",))
  assert data.frames is None
  batch = _host(next(device_input.iterator_factory(data, batch_size=4, seed=0)(0)))
  assert set(batch) == {"ppg"} and batch["ppg"].shape == (4, 16)


def test_every_augmentation_field_is_a_device_step_or_refused():
  """A new step of the recipe must be classified before the device path runs it or refuses it."""
  host_only = [f for step in device_input.HOST_ONLY_STEPS for f in step.fields]
  named = list(device_input.DEVICE_STEPS) + host_only
  assert len(named) == len(set(named)), named  # no field in both, or twice
  recipe = set(common.augment().to_dict()) - {"enabled"}  # the switch, not a step
  fields = {f.name for f in dataclasses.fields(augment.AugmentConfig)}
  assert recipe <= fields
  assert set(named) == fields, (sorted(fields - set(named)), sorted(set(named) - fields))
  # Each host-only step is off in the identity recipe and on once its own fields say so.
  for step in device_input.HOST_ONLY_STEPS:
    assert not step.on(augment.AugmentConfig.identity()), step.name


def test_from_config_refuses_what_only_the_host_path_does():
  clips = data_lib.ClipSource(_videos([64]), clip_length=16)
  host_only = (
      ("degradations", {"enabled": True, "degradations": ("jpeg",), "degradation_prob": 0.5}),
      ("HR-balanced", {"enabled": True, "speed_range": (0.5, 1.0), "target_hr_bpm": (45, 150)}),
      ("illumination changes", {"enabled": True, "illumination_change_prob": 0.5}),
  )
  for match, augment_cfg in host_only:
    with pytest.raises(device_input.DoesNotFit, match=match):
      device_input.from_config(
          clips, _mesh(1), keys=("frames", "ppg"), batch_size=4, seed=0, augment_cfg=augment_cfg
      )
  with pytest.raises(device_input.DoesNotFit, match="budget"):
    device_input.from_config(
        clips, _mesh(1), keys=("frames", "ppg"), batch_size=4, seed=0, budget_bytes=1000
    )
