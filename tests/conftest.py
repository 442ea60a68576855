"""Shared pytest set-up: 8 virtual CPU devices so sharding tests run anywhere, and
one XLA compilation cache for the whole test session."""

import os
import shutil
import tempfile

# Must happen before JAX initialises its backends (any test may import jax).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Preparing tiny dummy datasets in-process is faster than spawning a pool;
# tests of the parallel path set it explicitly.
os.environ.setdefault("CODEPHYS_PREP_WORKERS", "1")

# Most of an end-to-end test's time is XLA compiling the same tiny train and eval
# steps again: in each training run of a test, in the other xdist worker and in
# the subprocesses (TF-hidden smoke run, eval.py, distributed workers). JAX's
# persistent cache, keyed by the compiled program, the XLA flags and the jax
# build, lets every process of this session compile each program once. The
# variables are set here, before jax is imported, in the process that starts the
# xdist workers, so the workers and every subprocess inherit them. A fresh
# directory per session (removed at its end), so a run never reads programs
# compiled by an older checkout; set JAX_COMPILATION_CACHE_DIR to keep one.
_SESSION_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _SESSION_CACHE = tempfile.mkdtemp(prefix="codephys-tests-xla-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")


def pytest_unconfigure(config):
  # Only the process that made the directory removes it (xdist workers inherit it).
  if _SESSION_CACHE is not None and not hasattr(config, "workerinput"):
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


# ------------------------------------------------------------- the tiny end-to-end run

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_TF = os.path.join(ROOT, "tests", "no_tensorflow")


@dataclasses.dataclass(frozen=True)
class TinyRun:
  config: object  # ml_collections.ConfigDict: helpers.tiny_config(data_dir)
  workdir: str
  summary: dict  # train_and_evaluate's return value (through JSON)
  seen: dict  # what tests/no_tensorflow/smoke_run.py saw (TensorFlow modules, events...)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
  """Every stage of `helpers.tiny_config` trained once, then compared and exported.

  Run by tests/no_tensorflow/smoke_run.py in a subprocess where TensorFlow is
  hidden, with the dataset prepared through TFDS's on-disk shuffle buckets by two
  spawned workers: tests/test_without_tensorflow.py asserts on what that process
  saw, tests/test_train_lib.py on the run directory it leaves behind.

  Session-scoped fixtures are made once per xdist worker: the files that use this
  one are a group of SCHEDULE_GROUPS (below), run in one worker, which trains once.
  """
  import helpers

  root = tmp_path_factory.mktemp("tiny_run")
  data_dir, workdir, out = str(root / "tfds"), str(root / "run"), root / "out.json"
  env = dict(
      os.environ,
      PYTHONPATH=os.pathsep.join([NO_TF, ROOT]),
      # Two spawned preparation workers: the block must hold in them too.
      CODEPHYS_PREP_WORKERS="2",
  )
  proc = subprocess.run(
      [sys.executable, os.path.join(NO_TF, "smoke_run.py"), data_dir, workdir, str(out)],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=1200,
  )
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
  seen = json.loads(out.read_text())
  return TinyRun(helpers.tiny_config(data_dir), workdir, seen["summary"], seen)


# Test files that share a session fixture, by group: with xdist, each group runs
# in one worker (a session fixture is made once per worker), the biggest first.
# By file because xdist's own `xdist_group` marks no longer reach the scheduler
# under pytest 9 (the worker renames `item._nodeid`, which pytest 9 ignores).
SCHEDULE_GROUPS = {
    "tests/test_train_lib.py": "tiny_run",
    "tests/test_without_tensorflow.py": "tiny_run",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  """`-n N` (`--dist load`), except that each of SCHEDULE_GROUPS goes to one worker."""
  if config.getvalue("dist") != "load":
    return None  # an explicit --dist mode is left alone
  from xdist.scheduler import LoadScopeScheduling

  class GroupedLoadScheduling(LoadScopeScheduling):
    # Every other test is a scope of its own, handed out as `load` does; scopes are
    # started largest first (--loadscope-reorder, on by default).
    def _split_scope(self, nodeid):
      return SCHEDULE_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

  return GroupedLoadScheduling(config, log)
