#!/usr/bin/env bash
# The overhead benchmark on a CUDA device, prepared to run in one call of a GPU session (about 8 minutes).
# NOT run yet: the session that wrote it had no GPU. Usage, from the repository root:
#
#     OUT=/some/folder bash scripts/benchmark_overhead_gpu.sh
#
# Writes under $OUT: env.txt (nvidia-smi, torch, load), raw-gpu.csv (gradient step at batch 64 and 256, predict),
# raw-gpu-forward.csv (inference forward of every method and of the same-arithmetic reference in eager,
# CUDA-graph and torch.compile modes, batch 16 to 4096: where the device saturates), tables.md and
# step-gpu.png. Copy raw-gpu*.csv to docs/overhead/ and regenerate the tables with
#     python scripts/benchmark_overhead.py report docs/overhead/raw-*.csv --md docs/overhead/tables.md
# Each stage has its own time limit and its CSV is rewritten as it goes, so a stage that runs out of time
# still leaves what it measured.
set -uo pipefail
: "${OUT:?set OUT to a folder for the results}"
mkdir -p "$OUT"
PY=${PYTHON:-python}
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    PY=.venv/bin/python
fi
# the package must import; install it (no dependencies: keep the machine's CUDA torch) when it does not
$PY -c "import equirl.agents" 2>/dev/null || $PY -m pip install -q --no-deps -e . || exit 1
$PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda); sys.exit(0 if torch.cuda.is_available() else 3)" \
    || { echo "no CUDA device visible to torch" >&2; exit 3; }
{ nvidia-smi; $PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"; uptime; } > "$OUT/env.txt" 2>&1
export OMP_NUM_THREADS=1

# 1. gradient step and predict, every case and method, batch 64 and 256 (|G| up to 8)
timeout 270 $PY scripts/benchmark_overhead.py run --label gpu --device cuda --batch-sizes 64 256 \
    --measures step predict1 predictB --repeats 5 --block-seconds 0.05 --out "$OUT/raw-gpu.csv" --overwrite
# 2. the inference forward alone: eager and CUDA graphs over batch sizes (saturation), then torch.compile
timeout 150 $PY scripts/benchmark_overhead.py forward --label gpu-forward --device cuda \
    --cases cartpole-C2 rotgrid-D4 minigrid-full-D4 --batch-sizes 16 64 256 1024 4096 \
    --modes eager cudagraph --repeats 5 --block-seconds 0.05 --out "$OUT/raw-gpu-forward.csv" --overwrite
timeout 120 $PY scripts/benchmark_overhead.py forward --label gpu-compile --device cuda \
    --cases cartpole-C2 minigrid-full-D4 --batch-sizes 256 --modes compile --repeats 3 --block-seconds 0.05 \
    --out "$OUT/raw-gpu-compile.csv" --overwrite
# 3. tables and plot from whatever was written
$PY scripts/benchmark_overhead.py report "$OUT"/raw-gpu*.csv --md "$OUT/tables.md" --plot "$OUT/step-gpu.png"
