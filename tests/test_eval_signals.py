"""eval_lib.write_signals / read_signals: every video's predicted and reference signal saved with the metrics."""

import os

import numpy as np
import pytest

from codephys_jax import eval_lib


def test_signals_round_trip_and_bad_file(tmp_path):
  rng = np.random.default_rng(0)
  results = [
      ("subject1", rng.normal(size=300), rng.normal(size=300), 30.0),
      ("a/b", rng.normal(size=90), rng.normal(size=90), 29.7),
  ]
  path = str(tmp_path / eval_lib.SIGNALS_FILE)
  eval_lib.write_signals(path, results)
  back = eval_lib.read_signals(path)
  assert [r[0] for r in back] == ["subject1", "a/b"]
  for (vid, pred, ref, fps), (_, p2, r2, f2) in zip(results, back):
    np.testing.assert_allclose(p2, pred, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r2, ref, rtol=1e-6, atol=1e-6)
    assert f2 == fps
  assert sorted(os.listdir(tmp_path)) == [eval_lib.SIGNALS_FILE]  # no temporary left
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="bad.npz"):
    eval_lib.read_signals(str(bad))
