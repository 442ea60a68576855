"""Process start-up memory and environment size, side by side in one run.

  python benchmarks/startup.py [--before REV] [--python NAME=PATH ...] [--repeats 3]

Cases: the project at REV (default `HEAD`; e.g. the commit before TensorFlow was
made optional), extracted with `git archive` into a temporary folder, and the
working tree, each under every interpreter given with `--python` (default: the
one running this script). For each case, in fresh child processes:

  import : `import codephys_jax.train_lib, codephys_jax.eval_lib` (what
           train.py and eval.py load before doing anything); resident memory
           (VmRSS) after the import, its peak (VmHWM), the import time, and
           whether TensorFlow got loaded.
  help   : `python train.py --help`; peak RSS of the process (wait4 rusage) and
           wall time.

Each figure is the median of `--repeats` runs. Then, per interpreter, the size
of its site-packages (apparent bytes of every file) and of each installed
distribution (its RECORD), and the distributions one environment has and the
other lacks. Prints a Markdown summary; `--out FILE` also writes JSON.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_IMPORT_CHILD = r"""
import json, sys, time
t = time.perf_counter()
import codephys_jax.train_lib, codephys_jax.eval_lib
dt = time.perf_counter() - t
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kib = lambda key: int(status[key].split()[0])
print(json.dumps({"rss_mib": kib("VmRSS") / 1024, "peak_rss_mib": kib("VmHWM") / 1024,
                  "import_s": dt,
                  "tensorflow_loaded": "tensorflow" in sys.modules}))
"""


def _env(code_dir: str) -> dict[str, str]:
  env = dict(os.environ, PYTHONPATH=code_dir, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  return env


def _error(stderr: str) -> str:
  lines = [line for line in stderr.strip().splitlines() if line.strip()]
  return lines[-1] if lines else "no output"


def measure_import(python: str, code_dir: str) -> dict[str, Any]:
  out = subprocess.run(
      [python, "-c", _IMPORT_CHILD],
      cwd=code_dir,
      env=_env(code_dir),
      capture_output=True,
      text=True,
  )
  if out.returncode != 0:  # e.g. the old code where TensorFlow is not installed
    return {"error": _error(out.stderr)}
  return json.loads(out.stdout.strip().splitlines()[-1])


def measure_help(python: str, code_dir: str) -> dict[str, Any]:
  t = time.perf_counter()
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    proc = subprocess.Popen(
        [python, "train.py", "--help"], cwd=code_dir, env=_env(code_dir), stdout=out, stderr=err
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    # absl exits with 1 after printing the usage: success is the usage printed.
    if "--workdir" not in out.read():
      err.seek(0)
      return {"error": _error(err.read())}
  return {"peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": time.perf_counter() - t}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
  if any("error" in r for r in runs):
    return next(r for r in runs if "error" in r)
  out = {}
  for key in runs[0]:
    values = [r[key] for r in runs]
    out[key] = values[0] if isinstance(values[0], bool) else statistics.median(values)
  return out


def site_packages(python: str) -> str:
  return subprocess.run(
      [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
      capture_output=True,
      text=True,
      check=True,
  ).stdout.strip()


def tree_bytes(root: str) -> int:
  total = 0
  for dirpath, _, files in os.walk(root):
    for name in files:
      path = os.path.join(dirpath, name)
      if not os.path.islink(path):
        total += os.path.getsize(path)
  return total


def distribution_bytes(site: str) -> dict[str, int]:
  """{normalised distribution name: bytes of the files its RECORD lists}."""
  sizes = {}
  for dist in importlib.metadata.distributions(path=[site]):
    total = 0
    for f in dist.files or ():
      path = os.path.join(site, f)
      if os.path.isfile(path) and not os.path.islink(path):
        total += os.path.getsize(path)
    name = dist.metadata["Name"].lower().replace("_", "-")
    sizes[name] = sizes.get(name, 0) + total
  return sizes


def extract(rev: str, dest: str) -> None:
  archive = os.path.join(dest, "src.tar")
  subprocess.run(["git", "-C", REPO, "archive", "--format=tar", "-o", archive, rev], check=True)
  with tarfile.open(archive) as tar:
    tar.extractall(dest, filter="data")
  os.remove(archive)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--before", default="HEAD", help="git revision of the 'before' code")
  parser.add_argument(
      "--python", action="append", default=[], help="NAME=PATH of an interpreter (repeatable)"
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", help="also write the results as JSON here")
  args = parser.parse_args()
  pythons = dict(p.split("=", 1) for p in args.python) or {"this": sys.executable}

  results = {
      "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
      f"Python {platform.python_version()}",
      "cases": [],
      "envs": {},
  }
  with tempfile.TemporaryDirectory() as tmp:
    extract(args.before, tmp)
    codes = {f"code at {args.before}": tmp, "working tree": REPO}
    for env_name, python in pythons.items():
      for code_name, code_dir in codes.items():
        imports = _median([measure_import(python, code_dir) for _ in range(args.repeats)])
        helps = _median([measure_help(python, code_dir) for _ in range(args.repeats)])
        results["cases"].append(
            {"env": env_name, "code": code_name, "import": imports, "help": helps}
        )
        print(
            f"{env_name:>10} | {code_name:>20} | import: {imports} | --help: {helps}",
            file=sys.stderr,
        )
  for env_name, python in pythons.items():
    site = site_packages(python)
    results["envs"][env_name] = {
        "site_packages": site,
        "bytes": tree_bytes(site),
        "distributions": distribution_bytes(site),
    }

  mib = 1 << 20
  print(f"Machine: {results['machine']}; median of {args.repeats} runs each.\n")
  print(
      "| environment | code | RSS after import (MiB) | peak (MiB) | import (s) "
      "| TF loaded | `train.py --help` peak RSS (MiB) | wall (s) |"
  )
  print("|---|---|---|---|---|---|---|---|")
  for c in results["cases"]:
    i, h = c["import"], c["help"]
    row = f"| {c['env']} | {c['code']} | "
    if "error" in i:
      row += f"fails: `{i['error']}` | | | | "
    else:
      row += (
          f"{i['rss_mib']:.0f} | {i['peak_rss_mib']:.0f} | {i['import_s']:.1f} "
          f"| {'yes' if i['tensorflow_loaded'] else 'no'} | "
      )
    if "error" in h:
      row += f"fails: `{h['error']}` | |"
    else:
      row += f"{h['peak_rss_mib']:.0f} | {h['wall_s']:.1f} |"
    print(row)
  print("\n| environment | site-packages (MiB) | distributions |")
  print("|---|---|---|")
  for name, env in results["envs"].items():
    print(f"| {name} | {env['bytes'] / mib:.0f} | {len(env['distributions'])} |")
  names = list(results["envs"])
  for a in names:
    for b in names:
      if a == b:
        continue
      only = {
          k: v
          for k, v in results["envs"][a]["distributions"].items()
          if k not in results["envs"][b]["distributions"]
      }
      if only:
        listed = ", ".join(
            f"{k} {v / mib:.0f}" for k, v in sorted(only.items(), key=lambda kv: -kv[1])
        )
        print(
            f"\nOnly in {a} (not in {b}), MiB: {listed} " f"(total {sum(only.values()) / mib:.0f})"
        )
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
