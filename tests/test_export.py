"""Tests for codephys_jax.export: round trip with a symbolic batch, runs without model code."""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codephys_jax import export, trainer

T, C = 12, 3


class TinyNet(nn.Module):

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.Conv(4, (3,), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train)(x)
    return nn.Dense(2)(nn.relu(x))  # per-frame output (B, T, 2)


MODEL = TinyNet()


def _variables():
  variables = MODEL.init(jax.random.key(0), jnp.zeros((2, T, C)), train=False)
  # Non-trivial running statistics so that a forgotten batch_stats would show.
  stats = jax.tree.map(lambda v: v + 0.5, variables["batch_stats"])
  return {"params": variables["params"], "batch_stats": stats}


def _infer(variables, x):
  return MODEL.apply(variables, x, train=False)


def test_round_trip_two_batch_sizes(tmp_path):
  mesh = trainer.make_mesh()
  # Replicated over 8 devices, as after training; the artefact must not care.
  variables = jax.device_put(_variables(), trainer.replicated(mesh))
  path = tmp_path / "model.jaxexport"
  meta = export.export_inference(
      _infer, variables, (T, C), np.float32, path, fs=30.0, description="tiny test model"
  )
  assert meta["input_shape"] == ["b", T, C] and meta["output_shapes"] == [["b", str(T), "2"]]
  assert json.loads((tmp_path / "model.jaxexport.json").read_text()) == meta
  assert export.load_sidecar(path)["fs"] == 30.0
  assert meta["num_bytes"] == os.path.getsize(path)
  fn = export.load_exported(path)
  host_vars = trainer.fetch(variables)
  for n in (1, 5):
    x = np.random.RandomState(n).randn(n, T, C).astype(np.float32)
    out = np.asarray(fn(x))
    assert out.shape == (n, T, 2)
    np.testing.assert_allclose(out, np.asarray(_infer(host_vars, x)), rtol=1e-6, atol=1e-6)
  with pytest.raises(Exception, match="(?i)shape"):
    fn(np.zeros((2, T + 1, C), np.float32))


def test_artefact_runs_in_a_process_without_model_code(tmp_path):
  variables = _variables()
  path = tmp_path / "m.bin"
  # Lowered for CPU and CUDA at once (works without a GPU); the child runs the CPU one.
  meta = export.export_inference(
      _infer, variables, (T, C), np.float32, path, platforms=("cpu", "cuda")
  )
  assert meta["platforms"] == ["cpu", "cuda"]
  x = np.random.RandomState(0).randn(3, T, C).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  # Only jax + numpy in the child: no flax, no codephys_jax.
  code = (
      "import sys, numpy as np, jax\n"
      f"blob = open({str(path)!r}, 'rb').read()\n"
      "f = jax.export.deserialize(bytearray(blob)).call\n"
      f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(f(np.load({str(tmp_path / 'x.npy')!r}))))\n"
      "assert 'flax' not in sys.modules and 'codephys_jax' not in sys.modules\n"
  )
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
  proc = subprocess.run(
      [sys.executable, "-c", code],
      env=env,
      cwd=tmp_path,
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_allclose(
      np.load(tmp_path / "y.npy"), np.asarray(_infer(variables, x)), rtol=1e-6, atol=1e-6
  )


def test_load_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="No exported model"):
    export.load_exported(tmp_path / "missing.bin")
  bad = tmp_path / "bad.bin"
  bad.write_bytes(b"not a flatbuffer at all")
  with pytest.raises(ValueError, match="bad.bin is not a serialised"):
    export.load_exported(bad)
