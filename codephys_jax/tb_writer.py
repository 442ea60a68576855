"""TensorBoard scalars and a progress report for the training loop, without TensorFlow.

clu's `metric_writers` and `periodic_actions` import TensorFlow at import time,
which a stock JAX image does not have (and which costs ~1.3 GB of disk and
several hundred MiB of resident memory in every process that loads it). This
module does the two things training used them for:

* `MetricWriter`: `write_scalars(step, {name: value})` logs the values and
  appends them to a TensorBoard event file in the stage's workdir. The event
  file is written by `tensorboardX`, which needs only protobuf and numpy;
  TensorBoard reads the files as usual (`tensorboard --logdir WORKDIR`).
* `ProgressReport`: a `trainer.train_loop` hook that logs steps/s, the fraction
  done and the ETA every `every_secs`, and writes `steps_per_sec` and `uptime`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Mapping

import numpy as np
import tensorboardX


class MetricWriter:
  """Scalars to the log and, unless `just_logging`, to a TensorBoard event file.

  Args:
    logdir: Directory of the event file (created if missing). One event file
      per writer: `events.out.tfevents.<time>.<host>...`.
    just_logging: Only log (e.g. on every process but the first of a
      multi-process run, so that one run writes one set of events).
    flush_secs: How often the event file is flushed in the background; `flush`
      and `close` flush at once.
    jsonl_path: Unless `just_logging`, also append each write as one JSON line
      `{"step": s, name: value, ...}` to this file (read by `curves.plot_run`).
  """

  def __init__(
      self,
      logdir: str,
      *,
      just_logging: bool = False,
      flush_secs: int = 30,
      jsonl_path: str | None = None,
  ):
    self.logdir = logdir
    self._events = (
        None if just_logging else tensorboardX.SummaryWriter(logdir=logdir, flush_secs=flush_secs)
    )
    self._jsonl_path = None if just_logging else jsonl_path

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """Log `scalars` and add each as a TensorBoard scalar at `step`.

    Raises:
      ValueError: a value is not a single number (names the tag).
    """
    values = {}
    for tag, value in scalars.items():
      arr = np.asarray(value)
      if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"write_scalars: {tag!r} is not a scalar number "
            f"(shape {arr.shape}, dtype {arr.dtype})"
        )
      values[tag] = float(arr.reshape(()))
    logging.info("[%d] %s", step, ", ".join(f"{k}={v:.6g}" for k, v in values.items()))
    if self._events is not None:
      for tag, value in values.items():
        self._events.add_scalar(tag, value, global_step=int(step))
    if self._jsonl_path is not None:
      with open(self._jsonl_path, "a") as f:
        f.write(json.dumps({"step": int(step), **values}) + "\n")

  def flush(self) -> None:
    if self._events is not None:
      self._events.flush()

  def close(self) -> None:
    """Flush and close the event file (idempotent)."""
    if self._events is not None:
      self._events.close()
      self._events = None

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()


def format_duration(seconds: float) -> str:
  """123456.7 -> '1d10h17m'; under a minute -> '0m'."""
  seconds = max(0.0, float(seconds))
  days, rest = divmod(int(seconds), 86400)
  hours, rest = divmod(rest, 3600)
  out = f"{days}d" if days else ""
  out += f"{hours}h" if hours else ""
  return out + f"{rest // 60}m"


class ProgressReport:
  """Training-loop hook: steps/s, % done and ETA every `every_secs` and at the end.

  Call it with the number of completed steps after every step. The first call
  only starts the clock: its step includes compilation, which would make the
  first rate meaningless.

  Args:
    num_train_steps: The step the run ends at (reported at that step whatever
      the time).
    writer: Gets `steps_per_sec` and `uptime` (seconds since the hook was made)
      at each report.
    every_secs: Minimum time between two reports.
    name: Prefix of the log line (e.g. the stage).
    clock: Seconds, monotonic; injectable so that tests need no real time.
  """

  def __init__(
      self,
      *,
      num_train_steps: int,
      writer: MetricWriter | None = None,
      every_secs: float = 60.0,
      name: str = "",
      clock: Callable[[], float] = time.monotonic,
  ):
    self.num_train_steps = int(num_train_steps)
    self._writer = writer
    self._every_secs = float(every_secs)
    self._name = name
    self._clock = clock
    self._t0 = clock()
    self._last: tuple[int, float] | None = None
    self.last_message: str | None = None

  def __call__(self, step: int) -> None:
    now = self._clock()
    if self._last is None:
      self._last = (step, now)
      return
    prev_step, prev_time = self._last
    if step <= prev_step:
      return
    if step < self.num_train_steps and now - prev_time < self._every_secs:
      return
    rate = (step - prev_step) / max(now - prev_time, 1e-9)
    eta = (self.num_train_steps - step) / rate
    message = (
        f"{self._name + ': ' if self._name else ''}{rate:.1f} steps/s, "
        f"{100 * step / self.num_train_steps:.1f}% ({step}/{self.num_train_steps}), "
        f"ETA {format_duration(eta)}"
    )
    logging.info("%s", message)
    self.last_message = message
    if self._writer is not None:
      self._writer.write_scalars(step, {"steps_per_sec": rate, "uptime": now - self._t0})
    self._last = (step, now)
