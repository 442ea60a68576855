"""Atomic JSON writing for run outputs (metrics, provenance, tables)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np


def _default(x: Any) -> Any:
  if isinstance(x, (np.floating, np.integer, np.bool_)):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"not JSON serialisable: {type(x)}")


def write_json(path: str | os.PathLike[str], obj: Any, *, sort_keys: bool = False) -> None:
  """Write `obj` next to `path` and rename: readers never see a half-written file."""
  path = os.fspath(path)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=sort_keys, default=_default)
  os.replace(tmp, path)
