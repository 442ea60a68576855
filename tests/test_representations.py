"""Input representations (codephys_jax.representations): what each one keeps and removes."""

import numpy as np
import pytest

from codephys_jax import representations as rep

FS = rep.BAND_FPS


def _frames(base_rgb, pulse, light):
  """uint8-range float clip [1, T, 1, P, 3]: pixels of brightness `base_rgb` [P, 3]
  under a multiplicative light change `light` [T] and a blood pulse `pulse` [T]
  (relative change with the green-heavy blood signature)."""
  signature = np.array([0.33, 0.77, 0.53]) / 0.77
  base = np.asarray(base_rgb, np.float64)[None, :, :]
  x = base * light[:, None, None] * (1.0 - pulse[:, None, None] * signature)
  return x[None, :, None]


def _normalize(x, mode):
  # The functions divide by 255 first; feed floats so no rounding hides the pulse.
  return np.asarray(rep.normalize_frames(np.asarray(x, np.float32), mode))


def _corr(a, b):
  return float(np.corrcoef(a, b)[0, 1])


def test_relative_gives_every_skin_tone_the_same_pulse():
  t = np.arange(128) / FS
  pulse = 0.01 * np.sin(2 * np.pi * 1.2 * t)
  light = np.ones_like(t)
  x = _frames([[220, 180, 150], [90, 60, 45]], pulse, light)
  rel = _normalize(x, "relative")[0, :, 0]  # [T, P, 3]
  tmp = _normalize(x, "temporal")[0, :, 0]
  g = 1  # green channel
  # Relative change: the light and the dark pixel carry (nearly) the same signal...
  ratio_rel = np.std(rel[:, 0, g]) / np.std(rel[:, 1, g])
  # ...while mean removal alone keeps the dark pixel's pulse 3x smaller.
  ratio_tmp = np.std(tmp[:, 0, g]) / np.std(tmp[:, 1, g])
  assert ratio_rel == pytest.approx(1.0, abs=0.2)
  assert ratio_tmp > 2.5


def test_relative_band_keeps_the_pulse_and_weakens_slow_drift():
  # A 64-frame clip (the demo's), a pulse at 66 bpm and slow light drift.
  t = np.arange(64) / FS
  pulse = 0.005 * np.sin(2 * np.pi * 1.1 * t)
  g = lambda x, mode: _normalize(x, mode)[0, :, 0, 0, 1]  # noqa: E731  (green trace)
  # The pulse alone passes the band mask nearly undistorted (the pulse darkens: -pulse).
  still = _frames([[200, 160, 130]], pulse, np.ones_like(t))
  assert _corr(g(still, "relative_band"), -pulse) > 0.9
  # Drift 6x the pulse: the mask removes most of it, mean removal alone does not.
  light = 1.0 + 0.03 * np.sin(2 * np.pi * 0.15 * t + 0.3)
  drifting = _frames([[200, 160, 130]], pulse, light)
  band, plain = _corr(g(drifting, "relative_band"), -pulse), _corr(g(drifting, "relative"), -pulse)
  assert band > 0.8 and band > plain + 0.1


def test_relative_band_removes_a_slow_drift_whatever_its_phase():
  # The mask acts on the clip extended by its mirror image: no jump at the clip's
  # ends, so a drift 6x the pulse is removed at every phase (a plain DFT mask
  # left pulse correlations of 0.31-0.55 here, depending on the phase).
  t = np.arange(64) / FS
  pulse = 0.005 * np.sin(2 * np.pi * 1.1 * t)
  corrs = []
  for phase in np.linspace(0.0, 2 * np.pi, 8, endpoint=False):
    light = 1.0 + 0.03 * np.sin(2 * np.pi * 0.15 * t + phase)
    x = _frames([[200, 160, 130]], pulse, light)
    corrs.append(_corr(_normalize(x, "relative_band")[0, :, 0, 0, 1], -pulse))
  assert min(corrs) > 0.85, corrs


@pytest.mark.parametrize("mode", rep.NAMES)
def test_output_of_a_perfect_model_is_the_pulse(mode):
  # A model that outputs its training target exactly gives back the PPG.
  t = np.arange(160) / FS
  ppg = np.sin(2 * np.pi * 1.3 * t) + 0.3 * np.sin(2 * np.pi * 2.6 * t + 1.0)
  ppg = ((ppg - ppg.mean()) / ppg.std()).astype(np.float32)[None]
  out = np.asarray(rep.to_waveform(rep.label_target(ppg, mode), mode))[0]
  # (diff_normalized loses the last difference and integrates: 0.96 here)
  assert _corr(out, ppg[0]) > 0.95


@pytest.mark.parametrize("mode", rep.NAMES)
def test_unit_variance_per_clip(mode):
  x = np.random.default_rng(0).integers(0, 256, (2, 64, 4, 4, 3)).astype(np.uint8)
  y = np.asarray(rep.normalize_frames(x, mode))
  assert y.shape == x.shape and y.dtype == np.float32
  np.testing.assert_allclose(y.reshape(2, -1).std(axis=1), 1.0, rtol=0.02)


def test_band_representation_refuses_another_frame_rate():
  rep.check_fps("relative_band", FS)
  rep.check_fps("temporal", 25.0)  # not defined in Hz: any rate
  with pytest.raises(ValueError, match="target_fps is 25"):
    rep.check_fps("relative_band", 25.0)
  with pytest.raises(ValueError, match="unknown input_norm"):
    rep.check_fps("nope", FS)
