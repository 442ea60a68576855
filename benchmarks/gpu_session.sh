#!/usr/bin/env bash
# One command on a machine with a GPU: the step-time table against PyTorch and a
# short paper-size training, everything written to one folder.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]      (default: gpu_session_out)
#
# Needs the accelerator build of jax and the project's requirements
# (docs/INSTALL.md); torch is optional (its column is skipped when absent).
# WHEELS=DIR installs missing packages offline from a folder of wheels first.
# Budget: under 8 minutes on one H100 (benchmark ~3 min, training ~4 min).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_session_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export CODEPHYS_PREP_WORKERS=${CODEPHYS_PREP_WORKERS:-$(nproc)}
PY=${PYTHON:-python3}
if [[ -n "${WHEELS:-}" ]]; then
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -3
fi
start=$(date +%s)
{
  nvidia-smi || true
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" \
    || echo "torch: not installed"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# 1. Step time, side by side (72 and 128 px, batch 4, 160 frames; f32 and bf16).
timeout 300 "$PY" benchmarks/gpu_step.py --sizes=72,128 --bf16 --pipelines=device,host \
  --json="$OUT/gpu_step.json" --markdown="$OUT/gpu_step.md" 2>&1 | tee "$OUT/gpu_step.log"
echo "benchmark done after $(( $(date +%s) - start )) s"

# 2. Short paper-size training (Stage I, CodePhys, baseline at 128x128x160).
/usr/bin/time -v -o "$OUT/train_time.txt" timeout 420 "$PY" train.py \
  --config=configs/gpu_short.py --workdir="$OUT/train" 2>&1 | tee "$OUT/train.log"
"$PY" - "$OUT" <<'PYEOF'
# Curves from the training log lines written by the metric writer, step time and memory.
import json, os, re, sys
out = sys.argv[1]
import jax
stats = jax.devices()[0].memory_stats() or {}
curves = {}
pat = re.compile(r"\[(\d+)\] (.*)")
for line in open(os.path.join(out, "train.log"), errors="replace"):
  m = pat.search(line)
  if not m:
    continue
  for k, v in re.findall(r"([\w/]+)=([-+0-9.eE]+|nan|inf)", m.group(2)):
    curves.setdefault(k, []).append((int(m.group(1)), float(v)))
with open(os.path.join(out, "curves.json"), "w") as f:
  json.dump(curves, f)
try:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  keys = [k for k in curves if k.startswith("train/") and k.split("/")[1] in
          ("loss", "neg_pearson", "steps_per_sec")] + [k for k in curves if k.startswith("eval/mae")]
  fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3))
  for ax, k in zip(getattr(axes, "flat", [axes]), keys):
    xs, ys = zip(*curves[k])
    ax.plot(xs, ys, ".-"); ax.set_title(k); ax.set_xlabel("step (all stages)")
  fig.tight_layout(); fig.savefig(os.path.join(out, "curves.png"), dpi=100)
except Exception as e:  # curves.json is the record; the figure is a convenience
  print("no curves.png:", e)
print("curves:", sorted(curves))
PYEOF
echo "gpu_session: total $(( $(date +%s) - start )) s; results in $OUT/" | tee "$OUT/summary.txt"
grep -E "Maximum resident|Elapsed" "$OUT/train_time.txt" | tee -a "$OUT/summary.txt" || true
cat "$OUT/gpu_step.md" >> "$OUT/summary.txt" 2>/dev/null || true
