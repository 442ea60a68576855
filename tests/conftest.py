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
