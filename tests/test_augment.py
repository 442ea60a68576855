"""Training augmentation: each step against a closed form, determinism, pipeline shapes."""

import dataclasses

import numpy as np
import pytest
import scipy.signal

from codephys_jax import augment
from codephys_jax import data as data_lib
from fake_videos import FakeVideos

FPS = 30.0
OFF = augment.AugmentConfig.identity()


def only(**kw) -> augment.AugmentConfig:
  return dataclasses.replace(OFF, **kw)


def clip_of(frames, ppg=None):
  n = len(frames)
  ppg = np.sin(np.arange(n) / 5.0) if ppg is None else ppg
  return {
      "frames": np.asarray(frames, np.uint8),
      "ppg": data_lib.normalize_ppg(ppg),
      "fps": np.float32(FPS),
      "video_index": np.int32(3),
      "start": np.int32(7),
  }


def random_clip(n=8, s=12, seed=0):
  rng = np.random.default_rng(seed)
  return clip_of(rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8))


def grey_clip(n=8, s=12, level=128):
  return clip_of(np.full((n, s, s, 3), level, np.uint8))


def run(cfg, clip, seed=0, length=None):
  length = length or len(clip["frames"])
  return augment.make_augment(cfg, length)(clip, np.random.default_rng(seed))


def test_identity_keeps_clip_and_passes_keys():
  clip = random_clip()
  out = run(OFF, clip)
  np.testing.assert_array_equal(out["frames"], clip["frames"])
  np.testing.assert_allclose(out["ppg"], clip["ppg"], atol=1e-6)
  assert out["video_index"] == 3 and out["start"] == 7 and out["fps"] == FPS


def test_flip_mirrors_frames_exactly():
  clip = random_clip()
  out = run(only(flip_prob=1.0), clip)
  np.testing.assert_array_equal(out["frames"], clip["frames"][:, :, ::-1])
  assert out["frames"].dtype == np.uint8


def test_illumination_offset_is_constant_per_clip_with_std_10():
  offsets = []
  for seed in range(300):
    out = run(only(illumination_std=10.0), grey_clip(n=4, s=4), seed=seed)
    diff = out["frames"].astype(np.int32) - 128
    assert np.all(diff == diff.flat[0])  # one offset for every pixel of every frame
    offsets.append(diff.flat[0])
  assert abs(np.mean(offsets)) < 2.0
  assert 8.5 < np.std(offsets) < 11.5


def test_pixel_noise_std():
  out = run(only(noise_std=2.0), grey_clip(n=8, s=32))
  diff = out["frames"].astype(np.float64) - 128
  assert abs(diff.mean()) < 0.05
  # Rounding to integers adds 1/12 of variance to N(0, 2^2).
  assert abs(diff.std() - np.sqrt(4 + 1 / 12)) < 0.05


def _dominant_hz(x, fs):
  f, p = scipy.signal.periodogram(x - x.mean(), fs, window="hann", nfft=1 << 15)
  return f[np.argmax(p)]


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_resampling_scales_frequency_and_keeps_frames_in_sync(speed):
  f0, t_out = 1.5, 240
  cfg = dataclasses.replace(augment.AugmentConfig(), speed_range=(speed, speed))
  need = augment.required_source_length(cfg, t_out)
  assert need == max(t_out, int(np.ceil(speed * (t_out - 1))) + 1)
  n = need + 11  # some room for a random start offset
  ppg = np.sin(2 * np.pi * f0 * np.arange(n) / FPS)
  # Frame brightness encodes the pulse, so frames and label must stay in step.
  frames = np.repeat((128 + 60 * ppg).round().astype(np.uint8)[:, None, None, None], 3, axis=-1)
  frames = np.broadcast_to(frames, (n, 16, 16, 3))
  for seed in range(3):
    out = run(cfg, clip_of(frames, ppg), seed=seed, length=t_out)
    assert out["frames"].shape == (t_out, 16, 16, 3) and out["ppg"].shape == (t_out,)
    assert out["ppg"].dtype == np.float32 and out["frames"].dtype == np.uint8
    assert abs(_dominant_hz(out["ppg"], FPS) - speed * f0) < 0.02
    # The label is the closed-form sinusoid at some integer start offset, up to
    # the linear-interpolation error bound h^2 / 8 * max|f''| (h = 2 pi f0 / FPS).
    k = np.arange(t_out)
    fits = [
        np.max(
            np.abs(
                out["ppg"] - data_lib.normalize_ppg(np.sin(2 * np.pi * f0 * (o + speed * k) / FPS))
            )
        )
        for o in range(n)
    ]
    bound = (2 * np.pi * f0 / FPS) ** 2 / 8 if speed != int(speed) else 1e-5
    assert min(fits) < 1.05 * bound + 1e-5
    brightness = out["frames"].reshape(t_out, -1).mean(axis=1)
    assert np.corrcoef(brightness, out["ppg"])[0, 1] > 0.99
    np.testing.assert_allclose(np.abs(out["ppg"]).max(), 1.0, atol=1e-6)


def test_hr_balanced_speed_spreads_every_subject_over_the_target_band():
  # Sources at 55, 80 and 125 bpm. A uniform speed keeps each subject's rate
  # (scaled around it); HR-balanced speed gives every subject the same spread
  # over the target band, wherever its own rate is, until speed_range clips it.
  t_out, low, high = 96, 45.0, 150.0
  balanced = only(speed_range=(0.3, 3.5), target_hr_bpm=(low, high))
  uniform = only(speed_range=(0.3, 3.5))
  need = augment.required_source_length(balanced, t_out)
  out_hr = {}
  for bpm in (55.0, 80.0, 125.0):
    ppg = np.sin(2 * np.pi * bpm / 60.0 * np.arange(need) / FPS)
    clip = clip_of(np.zeros((need, 4, 4, 3)), ppg)
    for name, cfg in (("balanced", balanced), ("uniform", uniform)):
      fn = augment.make_augment(cfg, t_out)
      hrs = [60 * _dominant_hz(fn(clip, np.random.default_rng(s))["ppg"], FPS) for s in range(60)]
      out_hr[name, bpm] = np.asarray(hrs)
  for bpm in (55.0, 80.0, 125.0):
    hrs = out_hr["balanced", bpm]
    # Uniform on [45, 150]: mean 97.5, std 30.3; both ends reached by every subject.
    assert abs(hrs.mean() - 97.5) < 12 and 22 < hrs.std() < 38, (bpm, hrs.mean(), hrs.std())
    assert hrs.min() < 60 and hrs.max() > 130
    assert np.all((hrs > low - 6) & (hrs < high + 6))
  # Under a uniform speed the mean follows the subject's own rate (x the mean speed 1.9).
  means = [out_hr["uniform", bpm].mean() for bpm in (55.0, 80.0, 125.0)]
  assert means[0] < 130 < means[1] < means[2]


def test_hr_balanced_log_scale_gives_each_octave_the_same_share():
  # 'log': targets uniform in log bpm, so 45-67.5 and 100-150 bpm (each a factor
  # 1.5) get the same share; 'linear' gives 45-67.5 bpm 22.5/105 = 21% of the
  # clips and 100-150 bpm 48%.
  src = 80.0
  ppg = np.sin(2 * np.pi * (src / 60.0) * np.arange(300) / FPS)
  shares = {}
  for scale in ("linear", "log"):
    cfg = only(speed_range=(0.3, 3.0), target_hr_bpm=(45.0, 150.0), target_hr_scale=scale)
    rng = np.random.default_rng(0)
    targets = np.array([src * augment.draw_speed(cfg, ppg, FPS, rng) for _ in range(4000)])
    assert targets.min() >= 45.0 - 1e-6 and targets.max() <= 150.0 + 1e-6
    shares[scale] = (np.mean(targets < 67.5), np.mean(targets > 100.0))
  assert abs(shares["linear"][0] - 22.5 / 105) < 0.03 and abs(shares["linear"][1] - 50 / 105) < 0.03
  log_share = np.log(1.5) / np.log(150.0 / 45.0)  # 0.337 each
  assert abs(shares["log"][0] - log_share) < 0.03 and abs(shares["log"][1] - log_share) < 0.03
  with pytest.raises(ValueError, match="target_hr_scale"):
    augment.AugmentConfig(target_hr_scale="octave")


def test_hr_balanced_speed_stays_inside_the_speed_range():
  cfg = only(speed_range=(0.8, 1.2), target_hr_bpm=(45.0, 150.0))
  ppg = np.sin(2 * np.pi * (100.0 / 60.0) * np.arange(200) / FPS)
  rng = np.random.default_rng(0)
  speeds = [augment.draw_speed(cfg, ppg, FPS, rng) for _ in range(200)]
  assert min(speeds) == 0.8 and max(speeds) == 1.2  # targets outside 80-120 bpm clip
  assert np.mean([0.8 < s < 1.2 for s in speeds]) > 0.25


def test_ppg_speed_augment_is_the_label_of_the_full_augment():
  # Stage I's PPG-only speed step draws the speed and offset exactly as the video
  # clips' augmentation does, so the codebook sees the same label distribution.
  cfg = only(speed_range=(0.4, 1.6), target_hr_bpm=(45.0, 150.0))
  t_out = 48
  need = augment.required_source_length(cfg, t_out)
  ppg = np.sin(2 * np.pi * (70.0 / 60.0) * np.arange(need) / FPS) ** 3
  clip = clip_of(np.zeros((need, 4, 4, 3)), ppg)
  full, label_only = augment.make_augment(cfg, t_out), augment.make_ppg_speed_augment(cfg, t_out)
  hrs = []
  for seed in range(12):
    a = full(clip, np.random.default_rng(seed))
    b = label_only({k: v for k, v in clip.items() if k != "frames"}, np.random.default_rng(seed))
    np.testing.assert_array_equal(a["ppg"], b["ppg"])
    assert "frames" not in b and b["video_index"] == 3
    hrs.append(60 * _dominant_hz(b["ppg"], FPS))
  assert min(hrs) < 70 < max(hrs) and max(hrs) - min(hrs) > 40  # not the source rate alone
  with pytest.raises(ValueError, match=f">= {need} samples"):
    label_only({"ppg": clip["ppg"][: need - 1]}, np.random.default_rng(0))


def test_illumination_change_is_one_gain_per_frame_and_off_keeps_the_stream():
  on = only(illumination_change_prob=1.0, illumination_change_severity=(4.0, 4.0))
  clip = grey_clip(n=60, s=8, level=120)
  out = run(on, clip)["frames"].astype(np.float64)
  gain = out.reshape(60, -1).mean(axis=1) / 120.0
  # Every pixel and channel of a frame scaled by the same gain (rounding aside)...
  assert np.abs(out - 120.0 * gain[:, None, None, None]).max() <= 1.0
  # ...that changes over the clip (severity 4: flicker 0.1, steps up to 0.22).
  assert np.ptp(gain) > 0.1
  # Off (the default): no draw is made, the rest of the recipe is unchanged.
  base = only(noise_std=2.0, flip_prob=0.5)
  off = dataclasses.replace(base, illumination_change_prob=0.0)
  np.testing.assert_array_equal(
      run(base, random_clip())["frames"], run(off, random_clip())["frames"]
  )


def test_speed_nearest_frames_are_source_frames():
  clip = random_clip(n=40)
  cfg = only(speed_range=(1.3, 1.3), frame_interp="nearest")
  out = run(cfg, clip, length=20)
  src = clip["frames"].reshape(40, -1)
  for f in out["frames"].reshape(20, -1):
    assert np.any(np.all(src == f, axis=1))


def test_too_short_clip_is_an_error():
  cfg = only(speed_range=(1.0, 1.4))
  assert augment.required_source_length(cfg, 160) == 224  # ceil(1.4 * 159) + 1
  assert augment.required_source_length(OFF, 160) == 160
  with pytest.raises(ValueError, match="needs 224"):
    run(cfg, random_clip(n=200), length=160)


def test_random_resized_crop_keeps_shape_and_zooms():
  s = 32
  ramp = np.tile((np.arange(s) * 8).astype(np.uint8)[None, :, None], (s, 1, 3))
  clip = clip_of(np.repeat(ramp[None], 4, axis=0))
  out = run(only(crop_scale=(0.25, 0.25)), clip)
  assert out["frames"].shape == clip["frames"].shape
  # A window of half the side, resized back: the ramp's range halves.
  row = out["frames"][0, s // 2, :, 0].astype(np.float64)
  assert abs(np.ptp(row) - 0.5 * np.ptp(ramp[0, :, 0])) < 8
  np.testing.assert_array_equal(out["frames"][0], out["frames"][3])  # same window for all frames


def test_camera_degradation_applied():
  cfg = only(degradations=("sensor_noise",), degradation_prob=1.0, severity_range=(5.0, 5.0))
  out = run(cfg, grey_clip(n=6, s=32))
  diff = out["frames"].astype(np.float64) - 128
  # Severity 5: read noise 7 grey levels + shot noise gain 1.6 per grey level.
  assert abs(diff.std() - np.sqrt(7.0**2 + 1.6 * 128)) < 1.0
  never = only(degradations=("sensor_noise",), degradation_prob=0.0)
  np.testing.assert_array_equal(run(never, grey_clip())["frames"], grey_clip()["frames"])


def test_deterministic_given_rng_and_full_recipe():
  cfg = augment.AugmentConfig(degradations=("defocus", "jpeg"), degradation_prob=0.5)
  clip = random_clip(n=augment.required_source_length(cfg, 10), s=16)
  a, b, c = run(cfg, clip, 5, 10), run(cfg, clip, 5, 10), run(cfg, clip, 6, 10)
  np.testing.assert_array_equal(a["frames"], b["frames"])
  np.testing.assert_array_equal(a["ppg"], b["ppg"])
  assert not np.array_equal(a["frames"], c["frames"])
  assert a["frames"].shape == (10, 16, 16, 3) and a["ppg"].shape == (10,)


def test_from_config_and_validation():
  cfg = augment.AugmentConfig.from_config(
      {"enabled": True, "flip_prob": 0.2, "speed_range": [0.8, 1.2], "degradations": ["jpeg"]}
  )
  assert cfg.flip_prob == 0.2 and cfg.speed_range == (0.8, 1.2) and cfg.degradations == ("jpeg",)
  with pytest.raises(ValueError, match="unknown augmentation"):
    augment.AugmentConfig.from_config({"flip": 0.5})
  for bad in (
      dict(speed_range=(1.4, 0.6)),
      dict(crop_scale=(0.0, 1.0)),
      dict(degradations=("nope",)),
      dict(flip_prob=2.0),
      dict(target_hr_bpm=(150.0, 45.0)),
      dict(target_hr_bpm=(60.0,)),
      dict(target_hr_bpm=(0.0, 100.0)),
      dict(illumination_change_prob=1.5),
      dict(illumination_change_severity=(2.0, 9.0)),
  ):
    with pytest.raises(ValueError):
      augment.AugmentConfig(**bad)


def test_clip_source_source_length():
  videos = FakeVideos([100, 50])
  plain = data_lib.ClipSource(videos, clip_length=20)
  assert plain.index == [(0, 0), (0, 20), (0, 40), (0, 60), (0, 80), (1, 0), (1, 20)]
  assert plain[0]["frames"].shape[0] == 20
  longer = data_lib.ClipSource(videos, clip_length=20, source_length=40)
  # Last starts move back so the 40-frame window fits (80 -> 60 and 20 -> 10).
  assert longer.index == [(0, 0), (0, 20), (0, 40), (0, 60), (1, 0), (1, 10)]
  item = longer[5]
  np.testing.assert_array_equal(item["frames"], videos[1]["frames"][10:50])
  assert item["ppg"].shape == (40,)
  assert data_lib.ClipSource(videos, clip_length=20, source_length=60).index[-1] == (0, 40)
  with pytest.raises(ValueError):
    data_lib.ClipSource(videos, clip_length=20, source_length=10)


def test_train_pipeline_with_augment():
  t = 16
  cfg = augment.AugmentConfig(degradations=("sensor_noise",), degradation_prob=0.5)
  clips = data_lib.ClipSource(
      FakeVideos([60, 45]), clip_length=t, source_length=augment.required_source_length(cfg, t)
  )
  spec = data_lib.PipelineSpec(batch_size=4, seed=0, num_threads=1, prefetch=1)
  fn = augment.make_augment(cfg, t)
  it = data_lib.train_pipeline(clips, spec, augment=fn)
  b0, b1 = next(it), next(it)
  assert b0["frames"].shape == (4, t, 8, 8, 3) and b0["frames"].dtype == np.uint8
  assert b0["ppg"].shape == (4, t) and b0["ppg"].dtype == np.float32
  np.testing.assert_allclose(np.abs(b0["ppg"]).max(axis=1), 1.0, atol=1e-6)
  resumed = next(data_lib.train_pipeline(clips, spec, start_step=1, augment=fn))
  np.testing.assert_array_equal(resumed["frames"], b1["frames"])
  np.testing.assert_array_equal(resumed["ppg"], b1["ppg"])
