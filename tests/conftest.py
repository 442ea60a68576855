"""Shared pytest set-up: 8 virtual CPU devices so sharding tests run anywhere."""

import os

# Must happen before JAX initialises its backends (any test may import jax).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Preparing tiny dummy datasets in-process is faster than spawning a pool;
# tests of the parallel path set it explicitly.
os.environ.setdefault("CODEPHYS_PREP_WORKERS", "1")
