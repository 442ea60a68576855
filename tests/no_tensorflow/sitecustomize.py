"""Hides TensorFlow from this process, as on an image where it is not installed.

Put this folder first on PYTHONPATH: Python imports `sitecustomize` at start-up,
so TensorFlow stays hidden in every process of the run, spawned preparation
workers included. `import tensorflow` raises ModuleNotFoundError and
`importlib.util.find_spec("tensorflow")` is None (what etils, TFDS and
TensorBoard check), so every library takes the path it takes without TensorFlow.
"""

import sys


def _hidden(name: str) -> bool:
  return name == "tensorflow" or name.startswith("tensorflow.")


class _WithoutTensorFlow:
  """Wraps one meta path finder: finds nothing for tensorflow, the rest as before."""

  def __init__(self, finder):
    self._finder = finder

  def find_spec(self, name, path=None, target=None):
    if _hidden(name):
      return None
    return self._finder.find_spec(name, path, target)

  def __getattr__(self, attr):
    return getattr(self._finder, attr)


sys.meta_path[:] = [_WithoutTensorFlow(f) for f in sys.meta_path]
for _name in [m for m in sys.modules if _hidden(m)]:
  del sys.modules[_name]
