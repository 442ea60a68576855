#!/usr/bin/env bash
# The paper-size config cross-validated over the subjects of a UBFC-layout tree on
# one GPU, with a step count that fits a short device session; everything written
# to one folder.
#
#   bash benchmarks/gpu_crossval.sh UBFC_TREE [OUT_DIR]     (default OUT_DIR: gpu_crossval_out)
#
# Settings (environment): CONFIG (configs/ubfc_intra.py), STEPS per stage (300;
# the config's own is 2500), EVAL_EVERY (100), FOLDS (4), NUM_VAL (2), LIMIT_S
# (430: the cross-validation is stopped after this many seconds and the folds
# that finished are reported), WHEELS (a folder of wheels installed offline
# first, as in benchmarks/gpu_session.sh).
# Writes into OUT_DIR: environment.txt, crossval.log, summary.txt (the pooled
# table, over the finished folds when stopped early, and each stage's median
# steps/s) and results.tgz (every fold's results.json, logs and TensorBoard
# files; no checkpoints).
set -uo pipefail
cd "$(dirname "$0")/.."
TREE=${1:?usage: bash benchmarks/gpu_crossval.sh UBFC_TREE [OUT_DIR]}
OUT=${2:-gpu_crossval_out}
CONFIG=${CONFIG:-configs/ubfc_intra.py}
STEPS=${STEPS:-300}
EVAL_EVERY=${EVAL_EVERY:-100}
FOLDS=${FOLDS:-4}
NUM_VAL=${NUM_VAL:-2}
LIMIT_S=${LIMIT_S:-430}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-/tmp/gpu_crossval}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_setup "config=$CONFIG steps=$STEPS eval_every=$EVAL_EVERY folds=$FOLDS num_val=$NUM_VAL tree=$TREE"
start=$(date +%s)

stage_flags=()
for stage in codebook codephys physnet; do
  stage_flags+=("--config.$stage.num_steps=$STEPS" "--config.$stage.eval_every=$EVAL_EVERY"
                "--config.$stage.warmup_steps=$(( STEPS / 10 ))" "--config.$stage.log_every=20")
done
timeout "$LIMIT_S" "$PY" benchmarks/crossval.py --config="$CONFIG" \
  --config.manual_dir="$TREE" --config.data_dir="$WORK/tfds" "${stage_flags[@]}" \
  --config.codephys.soft_query_warmup_steps=$(( STEPS / 10 )) \
  --workdir="$WORK/cv" --folds="$FOLDS" --num_val="$NUM_VAL" 2>&1 | tee "$OUT/crossval.log"
echo "crossval stopped after $(( $(date +%s) - start )) s (exit ${PIPESTATUS[0]})" | tee -a "$OUT/crossval.log"

"$PY" - "$WORK/cv" "$OUT/crossval.log" > "$OUT/summary.txt" 2>&1 <<'PYEOF'
# The pooled table (finished run) or the finished folds pooled, and steps/s per stage.
import json, os, re, statistics, sys
from codephys_jax import crossval
cv, log = sys.argv[1], sys.argv[2]
md = os.path.join(cv, "crossval.md")
if os.path.exists(md):
  print(open(md).read())
elif os.path.exists(os.path.join(cv, "folds.json")):
  folds = json.load(open(os.path.join(cv, "folds.json")))["folds"]
  rows, per_fold = [], []
  for i in range(len(folds)):
    fold_dir = os.path.join(cv, f"fold{i}")
    if not os.path.exists(os.path.join(fold_dir, "results.json")):
      break
    results = json.load(open(os.path.join(fold_dir, "results.json")))
    mine = [dict(r, fold=i, subject=r["video_id"]) for r in crossval.fold_rows(fold_dir, results)]
    rows += mine
    per_fold.append({"metrics": crossval.pooled_metrics(mine)})
  if rows:
    print(f"{len(per_fold)} of {len(folds)} folds finished (rows named by video id):")
    print(crossval.format_table(crossval.pooled_metrics(rows), per_fold) + "\n")
    print(crossval.format_subjects(rows) + "\n")
rates = {}
stage = None
for line in open(log, errors="replace"):
  m = re.search(r"=== stage (\w+)", line)
  if m:
    stage = m.group(1)
  r = re.search(r"train/steps_per_sec=([0-9.eE+-]+)", line)
  if r and stage:
    rates.setdefault(stage, []).append(float(r.group(1)))
for s, v in rates.items():
  # The first reading of each run includes compilation.
  v = v[1:] or v
  print(f"{s}: median {statistics.median(v):.2f} steps/s ({1000 / statistics.median(v):.0f} ms/step) over {len(v)} readings")
PYEOF
cat "$OUT/summary.txt"
(cd "$WORK" && find cv -name "*.json" -o -name "*.md" -o -name "*.csv" -o -name "*.log" \
   -o -name "events.out.tfevents*" -o -name "*.png" | tar czf "$OUT/results.tgz" -T -)
echo "gpu_crossval: total $(( $(date +%s) - start )) s; results in $OUT/"
