# Sourced by the benchmarks/gpu_*.sh scripts (from the repository root, with OUT
# and WORK set): the environment every run there shares, the offline install of
# WHEELS, and OUT/environment.txt (GPU, cores, versions and the line in $1).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export PYTHONUNBUFFERED=1
export CODEPHYS_PREP_WORKERS=${CODEPHYS_PREP_WORKERS:-$(nproc)}
# Later runs and folds reuse the compiled steps of the first.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$WORK/jax_cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
PY=${PYTHON:-python3}

gpu_setup() {
  if [[ -n "${WHEELS:-}" ]]; then
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -3
  fi
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    nproc
    "$PY" -c "import jax, flax, cv2; print('jax', jax.__version__, jax.devices()); print('flax', flax.__version__, 'cv2', cv2.__version__)"
    echo "$1"
  } > "$OUT/environment.txt" 2>&1
  cat "$OUT/environment.txt"
}
