#!/usr/bin/env bash
# Everything that needs an NVIDIA GPU, in one run: the `gpu` tests (every layer against
# NumPy, a LeNet-5 fit, the optimizers, save/load across backends, the benchmark smoke
# runs), then the three benchmarks against PyTorch on the same GPU. Results go to $OUT if
# set, else to benchmarks/results/<machine kind>/ as *_gpu.json and .png; a log of
# everything to gpu_check.log there. About 6-10 minutes on one H100/H200-class GPU.
#
#     bash benchmarks/gpu_check.sh            # needs CuPy, a CUDA PyTorch, pytest, hypothesis
set -uo pipefail
cd "$(dirname "$0")/.."
export MINICNN_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-$(cd benchmarks && python -c 'import _common; print(_common.results_dir())')}"
mkdir -p "$OUT"
status=0
run() {  # run a step, log it, remember a failure, carry on
    echo "=== $* ($(date +%T))" | tee -a "$OUT/gpu_check.log"
    "$@" 2>&1 | tee -a "$OUT/gpu_check.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "=== exit $rc: $*" | tee -a "$OUT/gpu_check.log"; status=1; }
}
run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
run python -c "import minicnn as mc; print(mc.backend.available())"
run python -m pytest -q -m gpu -p no:cacheprovider tests/test_cupy_backend.py tests/test_benchmarks_cupy.py
run python benchmarks/bench_kernels.py --backends cupy --cudnn-benchmark --out "$OUT"
run python benchmarks/bench_lenet5.py --backends cupy --out "$OUT"
run python benchmarks/bench_alexnet.py --backends cupy --out "$OUT"
exit $status
