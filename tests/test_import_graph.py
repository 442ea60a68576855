"""The import graph of codephys_jax goes one way: no module imports a module that
imports it back, counting imports inside functions, and the layers only import
downwards (entry points -> train/eval -> stages -> models, data, signal, ...)."""

from __future__ import annotations

import ast
import os

PACKAGE = "codephys_jax"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Layers, top to bottom; a module may import its own layer or those below it.
# Everything not named here is the bottom layer (models, data, signal, ...).
CORE = {
    "train_lib",
    "eval_lib",
    "robustness",
    "comparison",
    "export",
    "inference",
    "predict_lib",
    "methods",
    "crossval",
}


def _module_names() -> dict[str, str]:
  """Dotted module name -> file path, for every module of the package."""
  out = {}
  for dirpath, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
        if rel[-1] == "__init__":
          rel = rel[:-1]
        out[".".join(rel)] = os.path.join(dirpath, f)
  return out


def _imports(path: str, name: str, modules: set[str]) -> set[str]:
  """Package modules imported anywhere in the file (module level or in functions)."""
  tree = ast.parse(open(path).read(), filename=path)
  is_package = path.endswith("__init__.py")
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative import
        parts = name.split(".")
        anchor = parts if is_package else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
      # `from pkg import sub` imports the submodule pkg.sub when there is one.
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    else:
      continue
    for t in targets:
      # `import a.b.c` of a package module: the deepest package module named.
      while t and t not in modules:
        t = t.rpartition(".")[0]
      if t and t != name:
        found.add(t)
  return found


def import_graph() -> dict[str, set[str]]:
  modules = _module_names()
  return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import cycle as [a, b, ..., a], or None."""
  state: dict[str, int] = {}  # 1 = on the current path, 2 = done
  path: list[str] = []

  def visit(node: str) -> list[str] | None:
    state[node] = 1
    path.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return path[path.index(nxt) :] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def _layer(module: str) -> int:
  parts = module.split(".")
  if len(parts) > 1 and parts[1] in CORE:
    return 2
  if len(parts) > 1 and parts[1] == "stages":
    return 1
  return 0


def test_no_import_cycles():
  graph = import_graph()
  assert "codephys_jax.train_lib" in graph and graph["codephys_jax.train_lib"]
  cycle = find_cycle(graph)
  assert cycle is None, " -> ".join(cycle)


def test_layers_only_import_downwards():
  upward = [(m, d) for m, deps in import_graph().items() for d in deps if _layer(d) > _layer(m)]
  assert not upward, upward


def test_cycle_finder_sees_function_level_imports(tmp_path):
  """The check itself: a circle closed by an import inside a function is found."""
  pkg = tmp_path / "pkg"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  (pkg / "a.py").write_text("from pkg import b\n")
  (pkg / "b.py").write_text("def f():\n  from pkg import a\n  return a\n")
  modules = {"pkg", "pkg.a", "pkg.b"}
  graph = {
      m: _imports(
          str(pkg / (m.split(".")[-1] + ".py")) if m != "pkg" else str(pkg / "__init__.py"),
          m,
          modules,
      )
      for m in modules
  }
  assert graph["pkg.b"] == {"pkg.a"}
  assert find_cycle(graph) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])
  graph["pkg.b"] = set()
  assert find_cycle(graph) is None
