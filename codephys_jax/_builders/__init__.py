"""The dataset builders of the repository's `datasets/` folder, under private module names.

`datasets/` is the layout the project was specified with (one TFDS builder
folder per dataset), but `datasets` is also the name of a common PyPI package
(Hugging Face `datasets`). Importing the folder as the top-level module
`datasets` would shadow that package in a user's environment, or be shadowed by
it. So nothing imports `datasets`: its files are loaded by path, under names
inside this package:

  codephys_jax._builders.<name>          datasets/<name>/<name>_dataset_builder.py
  codephys_jax._builders.<name>_dummy    datasets/<name>/make_dummy_data.py
  codephys_jax._builders.builder_test_utils   datasets/builder_test_utils.py

These are real importable module names (a finder on `sys.meta_path` resolves
them), so builder classes pickle into the preparation worker processes like
any other class.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType

DATASETS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "datasets"
)
_PREFIX = __name__ + "."


def module_path(short_name: str) -> str | None:
  """The file behind `codephys_jax._builders.<short_name>`, or None if there is none."""
  if short_name == "builder_test_utils":
    path = os.path.join(DATASETS_DIR, "builder_test_utils.py")
  elif short_name.endswith("_dummy"):
    dataset = short_name[: -len("_dummy")]
    path = os.path.join(DATASETS_DIR, dataset, "make_dummy_data.py")
  else:
    path = os.path.join(DATASETS_DIR, short_name, f"{short_name}_dataset_builder.py")
  return path if os.path.isfile(path) else None


class _Finder(importlib.abc.MetaPathFinder):
  """Resolves `codephys_jax._builders.<short_name>` to its file in `datasets/`."""

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    if not fullname.startswith(_PREFIX) or "." in fullname[len(_PREFIX) :]:
      return None
    file = module_path(fullname[len(_PREFIX) :])
    if file is None:
      return None
    return importlib.util.spec_from_file_location(fullname, file)


if not any(isinstance(f, _Finder) for f in sys.meta_path):
  sys.meta_path.append(_Finder())


def load(short_name: str) -> ModuleType:
  """Import `datasets/...` file `short_name` (see the module docstring) by path."""
  if module_path(short_name) is None:
    raise ModuleNotFoundError(
        f"no builder module {short_name!r} under {DATASETS_DIR}", name=_PREFIX + short_name
    )
  return importlib.import_module(_PREFIX + short_name)
