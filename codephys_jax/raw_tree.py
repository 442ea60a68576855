"""Reading helpers shared by the dataset builders in `datasets/` (manual-download trees).

Each raw rPPG release is a tree of numbered folders (`subject12`, `p3/v1/source2`,
`17/0`, ...) holding a label file next to a video. These helpers list such folders
in numeric order, find the folder that actually holds them, read a label file's
lines and check that an item's label file exists, all raising
`alignment.PreparationError` with the offending path (and item) in the message.
"""

from __future__ import annotations

import os
import re

from codephys_jax import alignment
from codephys_jax import rppg_builder


def numbered_dirs(parent: str, pattern: re.Pattern) -> list[tuple[int, str]]:
  """(number, name) of the sub-folders of `parent` whose name matches `pattern`.

  The number is `pattern`'s first group; the list is in natural numeric order
  (never directory listing order, which differs between file systems).
  """
  found = []
  for name in os.listdir(parent):
    m = pattern.match(name)
    if m and os.path.isdir(os.path.join(parent, name)):
      found.append((int(m.group(1)), name))
  return sorted(found)


def data_root(manual_dir: str, pattern: re.Pattern, inner: str) -> str:
  """`manual_dir`, or `manual_dir/inner` when no entry of manual_dir matches `pattern`
  and that folder exists (the release unpacked with its own top folder)."""
  if not any(pattern.match(n) for n in os.listdir(manual_dir)) and os.path.isdir(
      os.path.join(manual_dir, inner)
  ):
    return os.path.join(manual_dir, inner)
  return manual_dir


def read_lines(path: str) -> list[str]:
  """The lines of a text file; an unreadable file is a PreparationError naming it."""
  try:
    with open(path) as f:
      return f.read().splitlines()
  except OSError as e:
    raise alignment.PreparationError(f"{path}: cannot read ({e})") from e


def item_file(item: rppg_builder.Item, name: str) -> str:
  """Path of the file `name` in the item's folder (`payload["dir"]`), which must exist."""
  path = os.path.join(item.payload["dir"], name)
  if not os.path.isfile(path):
    raise alignment.PreparationError(f"{item.key}: missing {path}")
  return path
