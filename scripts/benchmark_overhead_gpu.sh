#!/usr/bin/env bash
# The overhead benchmark on a CUDA device, prepared to run in one call of a GPU session (about 8 minutes).
# NOT run on a GPU yet: the sessions that wrote it had none. Usage, from the repository root:
#
#     OUT=/some/folder bash scripts/benchmark_overhead_gpu.sh
#     OUT=/tmp/dry DRY_RUN=1 bash scripts/benchmark_overhead_gpu.sh   # every stage on the CPU, tiny (about 2 min)
#
# Writes under $OUT: env.txt (nvidia-smi, torch, load), raw-gpu.csv (gradient step at batch 64 and 256, predict),
# raw-gpu-forward.csv (inference forward of every method and of the same-arithmetic reference in eager,
# CUDA-graph and torch.compile modes, batch 16 to 4096: where the device saturates), tables.md (with the targets:
# the GPU one, a |G| = 8 step at batch 256 within 1.3x plain, with its 95% bootstrap interval and verdict) and
# step-gpu.png. Copy raw-gpu*.csv to docs/overhead/raw/ and regenerate the tables with
#     python scripts/benchmark_overhead.py report docs/overhead/raw/*.csv --md docs/overhead/tables.md
# (on a CUDA device the reports use the wall clock: the CPU waits for the device). Each stage has its own time
# limit and its CSV is rewritten as it goes, so a stage that runs out of time still leaves what it measured.
# DRY_RUN=1 runs the same stages on the CPU with one case, small batches and one short round each, to check
# that the script and its Python parts run (its numbers mean nothing).
set -uo pipefail
: "${OUT:?set OUT to a folder for the results}"
mkdir -p "$OUT"
PY=${PYTHON:-python}
if [ -x .venv/bin/python ] && { [ "${DRY_RUN:-0}" = 1 ] || .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }; then
    PY=.venv/bin/python
fi
# the package must import; install it (no dependencies: keep the machine's CUDA torch) when it does not
$PY -c "import equirl.agents" 2>/dev/null || $PY -m pip install -q --no-deps -e . || exit 1
export OMP_NUM_THREADS=1
if [ "${DRY_RUN:-0}" = 1 ]; then
    DEV=cpu; LIMIT=1; CASES="--cases cartpole-C2"; STEP_BATCHES="8"; FWD_BATCHES="4 16"; REPEATS=1; BLOCK=0.005
    MODES="eager"; COMPILE_CASES="--cases cartpole-C2"
else
    $PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda); sys.exit(0 if torch.cuda.is_available() else 3)" \
        || { echo "no CUDA device visible to torch" >&2; exit 3; }
    DEV=cuda; LIMIT=0; CASES=""; STEP_BATCHES="64 256"; FWD_BATCHES="16 64 256 1024 4096"; REPEATS=5; BLOCK=0.05
    MODES="eager cudagraph"; COMPILE_CASES="--cases cartpole-C2 minigrid-full-D4"
fi
{ nvidia-smi 2>&1 || echo "no nvidia-smi"; $PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"; uptime; } > "$OUT/env.txt" 2>&1
# stage time limits (seconds); a dry run keeps them
t() { if [ "$LIMIT" = 1 ]; then echo 600; else echo "$1"; fi; }

# 1. gradient step and predict, every case and method, batch 64 and 256 (|G| up to 8)
timeout "$(t 270)" $PY scripts/benchmark_overhead.py run --label gpu --device $DEV $CASES --batch-sizes $STEP_BATCHES \
    --measures step predict1 predictB --repeats $REPEATS --block-seconds $BLOCK --out "$OUT/raw-gpu.csv" --overwrite
# 2. the inference forward alone: eager and CUDA graphs over batch sizes (saturation), then torch.compile
timeout "$(t 150)" $PY scripts/benchmark_overhead.py forward --label gpu-forward --device $DEV \
    ${CASES:---cases cartpole-C2 rotgrid-D4 minigrid-full-D4} --batch-sizes $FWD_BATCHES \
    --modes $MODES --repeats $REPEATS --block-seconds $BLOCK --out "$OUT/raw-gpu-forward.csv" --overwrite
timeout "$(t 120)" $PY scripts/benchmark_overhead.py forward --label gpu-compile --device $DEV \
    $COMPILE_CASES --batch-sizes ${STEP_BATCHES##* } --modes compile --repeats $REPEATS --block-seconds $BLOCK \
    --out "$OUT/raw-gpu-compile.csv" --overwrite
# 3. tables and plot from whatever was written
$PY scripts/benchmark_overhead.py report "$OUT"/raw-gpu*.csv --targets --md "$OUT/tables.md" --plot "$OUT/step-gpu.png"
