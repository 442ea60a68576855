"""Tests for codephys_jax.evaluation: windowing, rows, aggregated metrics, CSV."""

import csv

import numpy as np
import pytest

from codephys_jax import evaluation as ev
from codephys_jax import hr
from codephys_jax import metrics
from codephys_jax import signal as sig

FS = 30.0


def _pulse(seconds, bpm, phase=0.0):
  t = np.arange(int(round(seconds * FS))) / FS
  ph = 2 * np.pi * bpm / 60 * t + phase
  return np.sin(ph) + 0.4 * np.sin(2 * ph + 0.8)


@pytest.mark.parametrize(
    "seconds,win,stride,min_win,expected",
    [
        (65, 30, 15, None, 4),  # [0,30] [15,45] [30,60] + partial [45,65] (20 s >= 15)
        (65, 30, None, None, 2),  # [0,30] [30,60]; partial 5 s < 15 dropped
        (65, 30, None, 5, 3),  # partial 5 s kept when min is 5 s
        (60, 10, None, None, 6),
        (20, 30, None, None, 1),  # shorter than a window but >= half of it
        (10, 30, None, None, 0),
    ],
)
def test_window_counts(seconds, win, stride, min_win, expected):
  s = ev.EvalSettings(window_seconds=win, window_stride_seconds=stride, min_window_seconds=min_win)
  bounds = ev.window_bounds(int(seconds * FS), s)
  assert len(bounds) == expected
  assert all(0 <= a < b <= seconds * FS for a, b in bounds)


def test_evaluate_whole_videos_metrics():
  bpms_ref = [66.0, 80.0, 95.0]
  bpms_pred = [66.0, 84.0, 95.0]
  videos = [
      (f"v{i}", _pulse(40, p, 0.3), _pulse(40, r))
      for i, (p, r) in enumerate(zip(bpms_pred, bpms_ref))
  ]
  res = ev.evaluate_signals(videos, ev.EvalSettings())
  assert [r["video_id"] for r in res.rows] == ["v0", "v1", "v2"]
  for row, bp, br in zip(res.rows, bpms_pred, bpms_ref):
    assert abs(row["hr_pred"] - bp) < 1.0 and abs(row["hr_ref"] - br) < 1.0
    assert abs(row["hr_pred_robust"] - bp) < 1.0
    assert abs(row["hr_ref_peak"] - br) < 1.0
    assert row["start_s"] == 0.0 and row["end_s"] == 40.0
    assert row["quality"] > 0.8
  # Same-rate videos: pred and ref differ only by phase, so MACC ~ 1.
  assert res.rows[0]["macc"] > 0.99
  m = res.metrics
  expected = metrics.hr_metrics([r["hr_pred"] for r in res.rows], [r["hr_ref"] for r in res.rows])
  for key, value in expected.items():
    np.testing.assert_equal(m[key], value)
  assert 1.0 < m["mae"] < 2.0  # one video off by ~4 bpm out of three
  assert m["num_videos"] == 3 and m["num_windows"] == 3 and m["num_skipped"] == 0
  assert set(m["estimators"]) == {"fft", "peak", "robust"}
  assert m["estimators"]["fft"] == expected
  assert m["snr"] == pytest.approx(np.mean([r["snr"] for r in res.rows]))
  assert m["macc"] == pytest.approx(np.mean([r["macc"] for r in res.rows]))


def test_evaluate_windows_independent_reference():
  pred = _pulse(65, 75.0, 0.5) + 0.2 * np.random.default_rng(0).standard_normal(1950)
  ref = _pulse(65, 75.0)
  s = ev.EvalSettings(window_seconds=30, window_stride_seconds=15, extra_hr_methods=("hann_dft",))
  res = ev.evaluate_signals([("a", pred, ref), ("short", pred[:300], ref[:300])], s)
  assert res.skipped == ["short"]
  assert res.metrics["num_windows"] == 4 and res.metrics["num_videos"] == 1
  assert [(r["start_s"], r["end_s"]) for r in res.rows] == [
      (0.0, 30.0),
      (15.0, 45.0),
      (30.0, 60.0),
      (45.0, 65.0),
  ]
  # Each window is post-processed on its own, exactly as signal.postprocess does.
  a, b = 450, 1350
  p = sig.postprocess(pred[a:b], FS)
  r = sig.postprocess(ref[a:b], FS)
  row = res.rows[1]
  assert row["hr_pred"] == hr.hr_fft(p, FS)
  assert row["hr_ref_hann_dft"] == hr.hr_hann_dft(r, FS)
  assert row["snr"] == pytest.approx(metrics.snr_db(p, FS, hr.hr_fft(r, FS)))
  assert row["macc"] == pytest.approx(metrics.macc(p, r))
  assert set(res.metrics["estimators"]) == {"fft", "hann_dft"}


def test_diff_normalized_settings_integrate_first():
  ppg = 2.0 + _pulse(30, 70.0)
  label = sig.diff_normalize_label(ppg)
  s = ev.EvalSettings(diff_normalized=True, extra_hr_methods=())
  res = ev.evaluate_signals([("d", label, label)], s)
  assert abs(res.rows[0]["hr_ref"] - 70.0) < 1.0


def test_errors_and_concat():
  with pytest.raises(ValueError, match="samples"):
    ev.evaluate_signals([("x", np.zeros(100), np.zeros(90))])
  with pytest.raises(ValueError, match="unknown HR method"):
    ev.evaluate_signals([], ev.EvalSettings(hr_method="nope"))
  clips = [np.arange(3.0), np.arange(3.0, 5.0)[:, None]]
  np.testing.assert_array_equal(ev.concat_clips(clips), np.arange(5.0))
  with pytest.raises(ValueError):
    ev.concat_clips([])


def test_write_per_video_csv(tmp_path):
  res = ev.evaluate_signals(
      [("v1", _pulse(20, 70.0), _pulse(20, 72.0))], ev.EvalSettings(extra_hr_methods=("peak",))
  )
  path = tmp_path / "per_video.csv"
  ev.write_per_video_csv(res.rows, path)
  with open(path) as f:
    rows = list(csv.reader(f))
  assert rows[0][:3] == ["video_id", "hr_pred", "hr_ref"]
  assert "hr_pred_peak" in rows[0] and "snr" in rows[0]
  assert rows[1][0] == "v1"
  assert float(rows[1][1]) == res.rows[0]["hr_pred"]
