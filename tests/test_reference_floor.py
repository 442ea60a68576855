"""The reference floor benchmark: a perfect scale-free clip model is scored
like the reference on a steady pulse, and reads a different whole-video rate
when the contact PPG is strongest away from where the rate spends its time."""

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import reference_floor  # noqa: E402

from codephys_jax import clips  # noqa: E402
from codephys_jax import eval_lib  # noqa: E402
from configs import ubfc_cpu  # noqa: E402

FPS = 30.0


def _config():
  return ubfc_cpu.get_config()


def _tone(segments):
  """Concatenated sinusoids, phase-continuous: [(seconds, hz, amplitude), ...]."""
  out, phase = [], 0.0
  for seconds, hz, amp in segments:
    t = np.arange(int(seconds * FPS)) / FPS
    out.append(amp * np.sin(phase + 2 * np.pi * hz * t))
    phase += 2 * np.pi * hz * len(t) / FPS
  return np.concatenate(out)


def test_steady_pulse_has_no_floor():
  config = _config()
  ref = _tone([(60, 1.5, 1.0)])
  rows, pooled = reference_floor.floor_rows([("v1", ref, FPS)], config)
  assert rows[0]["hr_ref"] == pytest.approx(90.0, abs=1.0)
  assert rows[0]["clip copy"] == rows[0]["hr_ref"]
  assert rows[0]["constant amplitude"] == rows[0]["hr_ref"]
  assert pooled == {"clip copy": 0.0, "constant amplitude": 0.0}


def test_strong_short_segment_sets_the_reference_but_not_the_copy():
  # 15 s at 108 bpm with three times the amplitude, then 45 s at 126 bpm: the
  # reference's power is 9 * 15 against 1 * 45, the copy's 15 against 45.
  config = _config()
  ref = _tone([(15, 1.8, 3.0), (45, 2.1, 1.0)])
  steady = _tone([(60, 1.2, 1.0)])
  rows, pooled = reference_floor.floor_rows([("v1", ref, FPS), ("v2", steady, FPS)], config)
  drift = rows[0]
  assert drift["hr_ref"] == pytest.approx(108.0, abs=2.0)
  assert drift["clip copy"] == pytest.approx(126.0, abs=2.0)
  assert drift["constant amplitude"] == pytest.approx(126.0, abs=2.0)
  assert rows[1]["clip copy"] == rows[1]["hr_ref"]
  assert pooled["clip copy"] == pytest.approx(abs(drift["clip copy"] - drift["hr_ref"]) / 2)


def test_clip_copy_is_the_reference_through_clip_inference():
  config = _config()
  length = config.clip_length
  ref = _tone([(10, 1.5, 2.0), (10, 1.7, 0.5)])
  starts = clips.clip_starts(len(ref), length, length // 2)
  expected = clips.overlap_add(np.stack([ref[s : s + length] for s in starts]), starts, len(ref))
  np.testing.assert_allclose(reference_floor.clip_copy(ref, length), expected)
  # Amplitude does not survive, on a video shorter than one clip too (padded as frames are).
  short = _tone([(3, 1.5, 1.0)])
  copy = reference_floor.clip_copy(short, length)
  np.testing.assert_allclose(reference_floor.clip_copy(5.0 * short, length), copy, atol=1e-9)
  assert copy.shape == short.shape


def test_references_are_read_once_and_checked(tmp_path):
  ref = _tone([(20, 1.5, 1.0)])
  for method in ("a", "b"):
    d = tmp_path / "run" / "eval" / method
    d.mkdir(parents=True)
    eval_lib.write_signals(
        str(d / eval_lib.SIGNALS_FILE), [("subject10", ref, ref, FPS), ("subject9", ref, ref, FPS)]
    )
  refs = reference_floor.read_references([str(tmp_path / "run")])
  assert [v for v, _, _ in refs] == ["subject9", "subject10"]

  bad = tmp_path / "other" / "eval"
  bad.mkdir(parents=True)
  eval_lib.write_signals(str(bad / eval_lib.SIGNALS_FILE), [("subject9", ref, ref + 1.0, FPS)])
  with pytest.raises(ValueError, match="reference of subject9 differs"):
    reference_floor.read_references([str(tmp_path / "run"), str(tmp_path / "other")])
  with pytest.raises(FileNotFoundError, match="no signals.npz"):
    reference_floor.read_references([str(tmp_path / "empty")])
