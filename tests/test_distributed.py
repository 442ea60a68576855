"""Tests for codephys_jax.distributed: launch detection, and a real 2-process CPU run.

The 2-process test starts tests/distributed_worker.py twice on localhost (2 CPU
devices each, gloo collectives) and once as a single process with 4 devices, on the
same global batch, and requires the same losses and parameters.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from codephys_jax import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
TIMEOUT_S = 150
_CLUSTER_VARS = (
    "CODEPHYS_COORDINATOR",
    "CODEPHYS_NUM_PROCESSES",
    "CODEPHYS_PROCESS_ID",
    "JAX_COORDINATOR_ADDRESS",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "TPU_WORKER_HOSTNAMES",
)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _base_env(local_devices):
  env = {k: v for k, v in os.environ.items() if k not in _CLUSTER_VARS}
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = ROOT
  return env


def _launch(tmp_path, name, envs):
  """Starts one worker per env; waits for all; fails with their stderr on any problem."""
  out = tmp_path / f"{name}.json"
  procs = []
  for i, env in enumerate(envs):
    log = open(tmp_path / f"{name}_{i}.log", "w")
    procs.append(
        (
            subprocess.Popen(
                [sys.executable, WORKER, str(out), str(tmp_path / f"{name}_ckpt")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            ),
            log,
        )
    )
  deadline = time.monotonic() + TIMEOUT_S
  try:
    for p, _ in procs:
      p.wait(timeout=max(1.0, deadline - time.monotonic()))
  except subprocess.TimeoutExpired:
    pass
  finally:
    for p, log in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
      log.close()
  logs = "\n".join(
      f"--- {name} process {i} (rc={p.returncode}) ---\n"
      + (tmp_path / f"{name}_{i}.log").read_text()[-4000:]
      for i, (p, _) in enumerate(procs)
  )
  if any(p.returncode != 0 for p, _ in procs) or not out.exists():
    pytest.fail(f"{name} workers failed or timed out after {TIMEOUT_S}s:\n{logs}")
  return json.loads(out.read_text())


def test_two_processes_match_one_process(tmp_path):
  single = _launch(tmp_path, "single", [_base_env(4)])
  assert single["mode"] == "single" and single["process_count"] == 1
  assert single["device_count"] == 4
  port = _free_port()
  envs = []
  for pid in range(2):
    env = _base_env(2)
    env.update(
        CODEPHYS_COORDINATOR=f"127.0.0.1:{port}",
        CODEPHYS_NUM_PROCESSES="2",
        CODEPHYS_PROCESS_ID=str(pid),
    )
    envs.append(env)
  multi = _launch(tmp_path, "multi", envs)
  assert multi["mode"] == "explicit" and multi["process_count"] == 2
  assert multi["device_count"] == 4 and multi["local_device_count"] == 2
  np.testing.assert_allclose(multi["losses"], single["losses"], rtol=1e-5, atol=1e-6)
  assert multi["losses"][0] != multi["losses"][-1]
  assert multi["params"].keys() == single["params"].keys()
  for k in single["params"]:
    np.testing.assert_allclose(
        multi["params"][k], single["params"][k], rtol=1e-5, atol=1e-6, err_msg=k
    )
  assert single["restored_equal"] and multi["restored_equal"]


def _clean_env(monkeypatch):
  for k in _CLUSTER_VARS:
    monkeypatch.delenv(k, raising=False)


def test_single_process_is_a_no_op(monkeypatch):
  _clean_env(monkeypatch)
  info = distributed.maybe_initialize()
  assert (info.mode, info.num_processes, info.process_id) == ("single", 1, 0)
  monkeypatch.setenv("CODEPHYS_NUM_PROCESSES", "1")
  assert distributed.maybe_initialize().mode == "single"
  monkeypatch.setenv("SLURM_NTASKS", "1")
  assert distributed.maybe_initialize().mode == "single"
  import jax

  assert not jax.distributed.is_initialized()


@pytest.mark.parametrize(
    "env,match",
    [
        (
            {"CODEPHYS_NUM_PROCESSES": "2", "CODEPHYS_PROCESS_ID": "0"},
            "CODEPHYS_COORDINATOR not set",
        ),
        ({"CODEPHYS_NUM_PROCESSES": "2", "CODEPHYS_COORDINATOR": "h:1"}, "CODEPHYS_PROCESS_ID"),
        ({"CODEPHYS_NUM_PROCESSES": "two"}, "is not an integer"),
        (
            {
                "CODEPHYS_NUM_PROCESSES": "2",
                "CODEPHYS_PROCESS_ID": "2",
                "CODEPHYS_COORDINATOR": "h:1",
            },
            r"outside \[0, 2\)",
        ),
    ],
)
def test_bad_explicit_launch_is_rejected(monkeypatch, env, match):
  _clean_env(monkeypatch)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  with pytest.raises(ValueError, match=match):
    distributed.maybe_initialize()
