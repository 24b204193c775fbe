#!/usr/bin/env bash
# The GPU speed session in one script: Keras 3 on JAX and the PyTorch peer, bfloat16 and float32,
# 640x480 and 1280x720, batches of 1, 8 and 32 streams; one results file, one comparison table.
#
# Run from the repository root on a machine with CUDA, JAX, PyTorch and numpy but no Keras, with the
# git-ignored wheels/ folder beside it (keras, namex, optree for Python 3.12; see benchmarks/README.md):
#   bash benchmarks/gpu_session.sh          # writes $OUT/speed.json and $OUT/log.txt (OUT defaults to results/gpu)
#   QUICK=1 bash benchmarks/gpu_session.sh  # the same steps on a tiny grid: checks the script on a CPU machine
# Each stage has a time limit (about 7.5 minutes in all) and every measurement is saved as soon as it is
# made, so a stage cut short keeps what it measured. The pair that matters (strcnn_dtb in both
# frameworks) runs first; cnn and strcnn come last, with what time is left.
set -u
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

python3 -c "import keras" 2>/dev/null ||
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
RESULTS="$OUT/speed.json"
GRID=(--sizes 640x480 1280x720 --dtypes bfloat16 float32 --batches 1 8 32 --frames 50 --warmup 5 --repeats 3 --out "$RESULTS" -q)
if [ "${QUICK:-0}" = 1 ]; then
    GRID=(--sizes 32x24 --dtypes bfloat16 float32 --batches 1 2 --frames 3 --warmup 1 --repeats 2 --width 0.25 --out "$RESULTS" -q)
fi

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm,driver_version --format=csv
python3 -c "import jax, keras, torch; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__, '| torch', torch.__version__)" || exit 1

echo "== Keras on JAX: strcnn_dtb"
timeout 190 python3 -m bench_deblur.speed --models strcnn_dtb "${GRID[@]}"
echo "== PyTorch peer: strcnn_dtb (torch.compile)"
timeout 170 python3 -m benchmarks.peers.torch_strcnn --models strcnn_dtb "${GRID[@]}"
echo "== Keras on JAX: strcnn, cnn"
timeout 75 python3 -m bench_deblur.speed --models strcnn cnn "${GRID[@]}"

echo "== Comparison (median frames/s over all streams; $RESULTS)"
python3 -c "
import json, sys
from bench_deblur.speed import format_comparison
print(format_comparison(json.load(open(sys.argv[1]))['runs']))
" "$RESULTS"
