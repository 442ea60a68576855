"""Logging set-up for the CLIs: our INFO lines, not every library's."""

import logging

from absl import logging as absl_logging

# Libraries whose INFO records drown the training log (orbax logs every handler).
_QUIET = ("/orbax/", "/tensorflow_datasets/core/", "/grain/", "/jax/_src/")


class _DropLibraryInfo(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    return not any(part in record.pathname for part in _QUIET)


def setup() -> None:
  absl_logging.set_verbosity(absl_logging.INFO)
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _DropLibraryInfo) for f in handler.filters):
    handler.addFilter(_DropLibraryInfo())
