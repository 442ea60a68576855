#!/usr/bin/env bash
# One config cross-validated over a UBFC-layout tree once per training seed, the
# runs side by side on one GPU (each a process of its own), then their spread
# and their ensembles (benchmarks/seed_ensemble.py); everything written to one folder.
#
#   bash benchmarks/gpu_seeds.sh UBFC_TREE [OUT_DIR]     (default OUT_DIR: gpu_seeds_out)
#
# Settings (environment): CONFIG (configs/ubfc_cpu.py), SEEDS ("0 1 2 3 4 5 6 7";
# the training seed, --config.seed; the folds stay those of --seed=0), FOLDS (4),
# NUM_VAL (2), PARALLEL (runs at a time, 8), LIMIT_S (480: every run is stopped
# after this many seconds, and the folds finished in every run are analysed),
# DATA_DIR (a prepared TFDS data_dir to copy instead of preparing the tree here),
# FLAGS (more crossval flags, the same for every run), WHEELS (a folder of
# wheels installed offline first, as in benchmarks/gpu_session.sh).
# Writes into OUT_DIR: environment.txt, summary.md (the spread over seeds and
# the ensembles) and results.tgz (each run's log, every fold's results.json,
# per-video CSVs and signals.npz, scalars; no checkpoints).
set -uo pipefail
cd "$(dirname "$0")/.."
TREE=${1:?usage: bash benchmarks/gpu_seeds.sh UBFC_TREE [OUT_DIR]}
OUT=${2:-gpu_seeds_out}
CONFIG=${CONFIG:-configs/ubfc_cpu.py}
SEEDS=${SEEDS:-0 1 2 3 4 5 6 7}
FOLDS=${FOLDS:-4}
NUM_VAL=${NUM_VAL:-2}
PARALLEL=${PARALLEL:-8}
LIMIT_S=${LIMIT_S:-480}
FLAGS=${FLAGS:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-/tmp/gpu_seeds}
mkdir -p "$WORK/logs"
# Several processes share the GPU: each takes memory as it needs it.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_setup "config=$CONFIG seeds=$SEEDS folds=$FOLDS num_val=$NUM_VAL parallel=$PARALLEL flags=$FLAGS tree=$TREE"
start=$(date +%s)

if [[ -n "${DATA_DIR:-}" ]]; then
  mkdir -p "$WORK/tfds" && cp -r "$DATA_DIR"/. "$WORK/tfds/"
fi
# Prepare once, before the runs start (they would otherwise each prepare).
"$PY" - "$CONFIG" "$TREE" "$WORK/tfds" <<'PYEOF' 2>&1 | tail -3
import importlib.util
import sys
from codephys_jax import data as data_lib
spec = importlib.util.spec_from_file_location("cfg", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
c = mod.get_config()
c.manual_dir, c.data_dir = sys.argv[2], sys.argv[3]
builder = data_lib.load_builder(c.dataset, **data_lib.builder_kwargs(c))
print("prepared:", len(data_lib.open_split(builder, "full")), "videos")
PYEOF
echo "data ready after $(( $(date +%s) - start )) s"

run_one() {
  local seed=$1 left=$(( LIMIT_S - ($(date +%s) - start) ))
  (( left > 1 )) || left=1
  # shellcheck disable=SC2086
  timeout "$left" "$PY" benchmarks/crossval.py --config="$CONFIG" \
    --config.manual_dir="$TREE" --config.data_dir="$WORK/tfds" --config.seed="$seed" $FLAGS \
    --workdir="$WORK/seed$seed" --folds="$FOLDS" --num_val="$NUM_VAL" > "$WORK/logs/seed$seed.log" 2>&1
  echo "seed $seed: exit $? after $(( $(date +%s) - start )) s"
}
running=0
for seed in $SEEDS; do
  run_one "$seed" &
  running=$(( running + 1 ))
  if (( running >= PARALLEL )); then
    wait -n
    running=$(( running - 1 ))
  fi
done
wait
echo "runs stopped after $(( $(date +%s) - start )) s"

dirs=()
for seed in $SEEDS; do
  [[ -f "$WORK/seed$seed/folds.json" ]] && dirs+=("$WORK/seed$seed")
done
"$PY" benchmarks/seed_ensemble.py --config="$CONFIG" --members=1,2,4,8 \
  --markdown="$OUT/summary.md" "${dirs[@]}" 2>&1 | tail -40
(cd "$WORK" && find logs seed* -name "*.log" -o -name "*.json" -o -name "*.md" -o -name "*.csv" -o -name "*.jsonl" \
   -o -name "signals.npz" | tar czf "$OUT/results.tgz" -T -)
echo "gpu_seeds: total $(( $(date +%s) - start )) s; results in $OUT/"
