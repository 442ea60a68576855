"""Tests for codephys_jax.codec (the emulated inter-frame codec) and the synthetic
builder's `codec_qp` option."""

import numpy as np
import pytest

from codephys_jax import codec
from codephys_jax import data as data_lib


def _smooth_frame(h=48, w=64, seed=0):
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w]
  base = 120 + 40 * np.sin(x / 9.0)[..., None] * np.array([1.0, 0.8, 0.6]) + 20 * np.cos(y / 7.0)[..., None]
  return np.clip(base + rng.normal(0, 1.0, (h, w, 3)), 0, 255).astype(np.uint8)


def test_qp_step_follows_h264s_table():
  table = (0.625, 0.6875, 0.8125, 0.875, 1.0, 1.125)  # H.264's steps for qp 0-5
  for qp in range(52):
    h264 = table[qp % 6] * 2 ** (qp // 6)
    assert codec.qp_step(qp) == pytest.approx(h264, rel=0.032), qp
    if qp % 6 == 0:
      assert codec.qp_step(qp) == pytest.approx(h264, rel=1e-12)
  assert codec.qp_step(34) == pytest.approx(2 * codec.qp_step(28))


def test_low_qp_is_nearly_transparent_and_high_qp_is_not():
  frame = _smooth_frame()
  low = codec.InterFrameCodec(qp=4)(frame)
  high = codec.InterFrameCodec(qp=40)(frame)
  assert low.dtype == np.uint8 and low.shape == frame.shape
  err = lambda out: np.abs(out.astype(float) - frame).mean()
  assert err(low) < 1.5  # the 4:2:0 chroma and the rounding only
  assert err(high) > 3 * err(low)


def test_small_changes_are_held_until_the_next_intra_frame():
  # A still frame that brightens by 1 grey level (a pulse-sized change) after
  # frame 0. At qp 36 (step 40) a P-frame codes a 4x4 block's DC only when the
  # change plus the intra frame's own error (below 2/3 of a step) passes 5/6 of
  # a step: frames 1-3 repeat frame 0 exactly, and the intra frame that starts
  # the next group of pictures (frame 4) brings the change back.
  frame = _smooth_frame().astype(np.int16)
  frames = [np.clip(frame + (k > 0), 0, 255).astype(np.uint8) for k in range(6)]
  out = list(codec.encode_decode(frames, qp=36, gop=4))
  for k in range(1, 4):
    np.testing.assert_array_equal(out[k], out[0])
  jump = out[4].astype(float).mean() - out[0].astype(float).mean()
  assert jump == pytest.approx(1.0, abs=0.7)
  np.testing.assert_array_equal(out[5], out[4])
  # Frame by frame growing changes accumulate until a P-frame codes them.
  frames = [np.clip(frame + 3 * k, 0, 255).astype(np.uint8) for k in range(8)]
  means = [f.astype(float).mean() for f in codec.encode_decode(frames, qp=30, gop=250)]
  assert means[-1] - means[0] > 10
  # All intra (gop 1): every frame follows the change.
  intra = list(codec.encode_decode(frames, qp=30, gop=1))
  means = [f.astype(float).mean() for f in intra]
  assert np.all(np.diff(means) > 1.0)


def test_large_changes_are_coded_in_p_frames():
  frame = _smooth_frame()
  moved = np.roll(frame, 8, axis=1)
  c = codec.InterFrameCodec(qp=30, gop=250)
  first, second = c(frame), c(moved)
  assert np.abs(second.astype(float) - moved).mean() < np.abs(first.astype(float) - moved).mean() / 2


def test_deterministic_odd_sizes_and_bad_input():
  frames = [_smooth_frame(45, 61, seed=s) for s in range(3)]
  a = list(codec.encode_decode(frames, qp=26, gop=2))
  b = list(codec.encode_decode(frames, qp=26, gop=2))
  for x, y in zip(a, b):
    assert x.shape == (45, 61, 3)
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ValueError, match="qp must be in"):
    codec.InterFrameCodec(qp=60)
  with pytest.raises(ValueError, match="gop must be an integer"):
    codec.InterFrameCodec(qp=20, gop=0)
  c = codec.InterFrameCodec(qp=20)
  with pytest.raises(ValueError, match="uint8 RGB"):
    c(np.zeros((8, 8, 3), np.float32))
  c(frames[0])
  with pytest.raises(ValueError, match="frame 1 has shape"):
    c(np.zeros((16, 16, 3), np.uint8))


def _builder(**options):
  cls = data_lib.builder_class("synthetic_rppg")
  opts = dict(num_train=3, num_test=1, duration_s=1.0, width=96, height=72, degraded_types=())
  return cls, cls(config=cls.make_config(options=dict(opts, **options)), data_dir="/nonexistent")


def test_synthetic_builder_codes_training_subjects_only():
  cls, plain = _builder()
  _, coded = _builder(codec_qp=(24.0, 36.0), codec_gop=10)
  # Without the option the prepared dataset keeps its identity.
  assert "codec" not in plain.builder_config.source_id
  assert '"codec_qp": [24.0, 36.0]' in coded.builder_config.source_id
  assert coded.options.codec_qp == (24.0, 36.0)
  items = {it.key: it for it in coded.list_items(None)}
  qps = [items[f"train_{i:03d}"].payload["codec_qp"] for i in range(3)]
  assert all(24.0 <= q <= 36.0 for q in qps) and len(set(qps)) == 3
  assert "codec_qp" not in items["test_000"].payload
  plain_items = {it.key: it for it in plain.list_items(None)}
  src, labels = cls.read_item(items["train_000"])
  ref_src, ref_labels = cls.read_item(plain_items["train_000"])
  np.testing.assert_array_equal(labels.ppg, ref_labels.ppg)
  got = np.stack([f for _, f in src])
  ref = np.stack([f for _, f in ref_src])
  assert got.shape == ref.shape
  # The source restarts the codec: a second pass gives the same frames.
  np.testing.assert_array_equal(np.stack([f for _, f in src]), got)
  # The codec holds blocks between frames: far more pixels repeat the previous frame.
  unchanged = lambda v: np.mean(v[1:] == v[:-1])
  assert unchanged(got) > unchanged(ref) + 0.2
  assert 1.0 < np.abs(got.astype(float) - ref).mean() < 20.0


def test_synthetic_builder_refuses_bad_codec_options():
  cls = data_lib.builder_class("synthetic_rppg")
  for bad in [(30.0,), (36.0, 24.0), (20.0, 60.0)]:
    with pytest.raises(ValueError, match="codec_qp must be"):
      cls.make_config(options={"codec_qp": bad})
  for opts in ({"codec_qp": (20.0, 30.0), "codec_gop": 0}, {"codec_gop": 0}):
    with pytest.raises(ValueError, match="codec_gop must be"):
      cls.make_config(options=opts)
  # Equal settings written as ints or floats are one dataset.
  ids = {
      cls.make_config(options={"codec_qp": qp, "codec_gop": gop}).source_id
      for qp, gop in [((24, 36), 10), ((24.0, 36.0), 10.0)]
  }
  assert len(ids) == 1
