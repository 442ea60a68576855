"""Whole-video inference: overlapping clips blended without clip-border artefacts."""

import numpy as np
import pytest
from scipy import signal as sps

from codephys_jax import hr as hr_lib
from codephys_jax import inference
from codephys_jax import signal as sig

FS = 30.0
CLIP = 160
PULSE_BPM = 72.0


def _clip_model(seed):
  """A clip 'model' that returns the true pulse, but normalised per clip with a
  random gain and offset and a clip-dependent phase error, as real clip models do."""
  rng = np.random.default_rng(seed)

  def clip_fn(batch):
    t = batch[:, :, 0, 0, 0].astype(np.float64) / FS  # frames encode their own index
    gain = rng.uniform(0.5, 2.0, (len(batch), 1))
    offset = rng.normal(0, 1.0, (len(batch), 1))
    out = gain * np.sin(2 * np.pi * PULSE_BPM / 60 * t) + offset
    # Per-clip trend of random slope (clip models drift towards their borders):
    # after per-clip normalisation this is a sawtooth at the clip rate.
    ramp = np.linspace(-1, 1, batch.shape[1])[None, :]
    out = out + rng.normal(0, 3.0, (len(batch), 1)) * ramp
    return out

  return clip_fn


def _frames(n):
  return np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1).repeat(3, axis=-1)


def _clip_rate_power(x):
  """Share of in-band power on the clip-rate lines (multiples of fs / CLIP * 60 bpm)
  away from the pulse, after the standard post-processing."""
  y = sig.postprocess(x, FS, low_hz=0.6, high_hz=3.3)
  f, p = sps.periodogram(y, FS, nfft=sig.next_pow2(len(y)) * 4)
  bpm = f * 60
  band = (bpm > 36) & (bpm < 198)
  step = FS / CLIP * 60  # 11.25 bpm
  lines = np.zeros_like(band)
  for k in range(1, 20):
    if abs(k * step - PULSE_BPM) > 3 and abs(k * step - 2 * PULSE_BPM) > 3:
      lines |= np.abs(bpm - k * step) < 1.0
  return p[band & lines].sum() / p[band].sum()


def _naive(frames, clip_fn):
  outs = []
  for s in range(0, len(frames) - CLIP + 1, CLIP):
    o = clip_fn(frames[None, s : s + CLIP])[0]
    outs.append((o - o.mean()) / o.std())
  return np.concatenate(outs)


def test_clip_starts_cover_the_video():
  assert inference.clip_starts(100, 160, 80) == [0]
  starts = inference.clip_starts(1000, 160, 80)
  assert starts[0] == 0 and starts[-1] == 1000 - 160
  assert all(b - a <= 80 for a, b in zip(starts, starts[1:]))


def test_overlap_add_has_no_clip_rate_peaks():
  n = CLIP * 12  # 64 s
  frames = _frames(n)
  blended = inference.predict_video(
      frames, _clip_model(0), clip_length=CLIP, hop=CLIP // 2, batch_size=3
  )
  assert blended.shape == (n,)
  naive = _naive(frames, _clip_model(0))
  # Per-clip normalisation + concatenation puts power on lines every 11.25 bpm;
  # overlap-add with a taper removes most of it.
  naive_share, blended_share = _clip_rate_power(naive), _clip_rate_power(blended)
  assert naive_share > 0.02
  assert blended_share < naive_share / 3
  assert blended_share < 0.01  # what a pure sinusoid leaks onto those lines
  assert hr_lib.estimate_hr(sig.postprocess(blended, FS), FS) == pytest.approx(PULSE_BPM, abs=1)


def test_short_video_is_padded_and_cropped():
  frames = _frames(100)
  out = inference.predict_video(frames, _clip_model(1), clip_length=CLIP, batch_size=2)
  assert out.shape == (100,) and np.all(np.isfinite(out))


def test_clip_fn_shape_is_checked():
  with pytest.raises(ValueError, match="clip_fn returned shape"):
    inference.predict_video(_frames(400), lambda b: np.zeros((len(b), 10)), clip_length=CLIP)
