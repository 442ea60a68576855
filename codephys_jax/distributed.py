"""Multi-process start-up: `jax.distributed.initialize` only when it is needed.

Call `maybe_initialize()` first thing in an entry point, before anything touches a
JAX backend (creating an array, `jax.devices()`, ...). It decides between three cases:

1. Explicit launch (any machine, including several CPU processes on localhost):
   `CODEPHYS_NUM_PROCESSES` (> 1), `CODEPHYS_PROCESS_ID` and `CODEPHYS_COORDINATOR`
   ("host:port" of process 0) are all set. JAX's cluster auto-detection is switched
   off so a stray SLURM/OpenMPI variable cannot override what the launcher asked for.
2. Managed cluster: `JAX_COORDINATOR_ADDRESS` is set, or SLURM / Open MPI / Cloud TPU
   report more than one task. `jax.distributed.initialize()` is called without
   arguments and JAX's own cluster detection fills in the rest.
3. Anything else (one process, including `CODEPHYS_NUM_PROCESSES=1`): nothing happens.

Cross-process collectives on CPU go through gloo over TCP, which is the default of
`jax_cpu_collectives_implementation` in the JAX versions this project supports; the
flag is only forced back to "gloo" if something turned it off, because without it a
multi-process CPU run would fail at the first cross-process reduction.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax

_ENV_COORDINATOR = "CODEPHYS_COORDINATOR"
_ENV_NUM_PROCESSES = "CODEPHYS_NUM_PROCESSES"
_ENV_PROCESS_ID = "CODEPHYS_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class LaunchInfo:
  """How this process was started.

  `mode`: "explicit" (CODEPHYS_* variables), "auto" (JAX cluster detection),
  "single" (nothing to initialise) or "already" (the runtime was initialised before).
  """

  mode: str
  num_processes: int
  process_id: int


def _int_env(name: str) -> int:
  value = os.environ[name]
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"Environment variable {name}={value!r} is not an integer.") from None


def _explicit_launch() -> LaunchInfo | None:
  """Reads the CODEPHYS_* variables; None when they are absent."""
  if _ENV_NUM_PROCESSES not in os.environ:
    return None
  num_processes = _int_env(_ENV_NUM_PROCESSES)
  if num_processes < 1:
    raise ValueError(f"{_ENV_NUM_PROCESSES} must be >= 1, got {num_processes}.")
  if num_processes == 1:
    return LaunchInfo("single", 1, 0)
  missing = [n for n in (_ENV_PROCESS_ID, _ENV_COORDINATOR) if n not in os.environ]
  if missing:
    raise ValueError(
        f"{_ENV_NUM_PROCESSES}={num_processes} but {', '.join(missing)} not set; a "
        "multi-process launch needs the coordinator address and this process's id."
    )
  process_id = _int_env(_ENV_PROCESS_ID)
  if not 0 <= process_id < num_processes:
    raise ValueError(f"{_ENV_PROCESS_ID}={process_id} is outside [0, {num_processes}).")
  return LaunchInfo("explicit", num_processes, process_id)


def _managed_cluster_size() -> int:
  """Process count reported by a cluster manager, 1 when none is detected.

  Only cheap environment checks: Cloud TPU pods are recognised through the worker
  host list (querying the metadata server here would slow every single-host run).
  """
  if "JAX_COORDINATOR_ADDRESS" in os.environ:
    # A coordinator only makes sense with several processes; JAX finds the count.
    return 2
  for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
    if var in os.environ:
      try:
        return int(os.environ[var])
      except ValueError:
        continue
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return max(1, len([h for h in hosts.split(",") if h]))


def maybe_initialize() -> LaunchInfo:
  """Initialises the JAX distributed runtime when several processes were launched.

  Idempotent: a second call (or a call after the caller initialised JAX itself)
  returns the current process layout without touching the runtime.

  Returns:
    LaunchInfo with the mode used and this process's id / the process count.
  """
  if jax.distributed.is_initialized():
    return LaunchInfo("already", jax.process_count(), jax.process_index())
  explicit = _explicit_launch()
  if explicit is not None and explicit.mode == "single":
    return explicit
  if explicit is None and _managed_cluster_size() <= 1:
    return LaunchInfo("single", 1, 0)
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit is not None:
    logging.info(
        "jax.distributed: process %d/%d, coordinator %s",
        explicit.process_id,
        explicit.num_processes,
        os.environ[_ENV_COORDINATOR],
    )
    jax.distributed.initialize(
        coordinator_address=os.environ[_ENV_COORDINATOR],
        num_processes=explicit.num_processes,
        process_id=explicit.process_id,
        cluster_detection_method="deactivate",
    )
    return explicit
  jax.distributed.initialize()
  return LaunchInfo("auto", jax.process_count(), jax.process_index())
