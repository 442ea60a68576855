#!/usr/bin/env bash
# One entry point that sets itself up: creates .venv on first use (and again
# whenever requirements.txt or constraints.txt change), then runs a task.
#
#   ./run.sh demo    # default config: both CodePhys stages + baseline + POS on synthetic data
#   ./run.sh test    # the whole test suite
#   ./run.sh python ARGS...   # any command inside the environment
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY=${PYTHON:-python3}
stamp_want=$(cat requirements.txt constraints.txt | sha256sum | cut -c1-16)
if [[ ! -x $VENV/bin/python || "$(cat $VENV/.stamp 2>/dev/null)" != "$stamp_want" ]]; then
  echo "[run.sh] setting up $VENV (first use or requirements changed) ..." >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
  echo "$stamp_want" > "$VENV/.stamp"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
task=${1:-help}; shift || true
case "$task" in
  demo) exec "$VENV/bin/python" train.py --config=configs/default.py --workdir="${WORKDIR:-workdirs/default}" "$@" ;;
  test) exec "$VENV/bin/python" -m pytest -n 2 -q "$@" ;;
  python) exec "$VENV/bin/python" "$@" ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
