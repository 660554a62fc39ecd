"""When a numba kernel should use both cores: the measurement behind
``PARALLEL_MIN_VALUES`` in ``minicnn/kernels/numba_launch.py``.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_parallel_launch.py
    python benchmarks/bench_parallel_launch.py --smoke      # one small batch, seconds

For LeNet-5's kernels (im2col and col2im of its second layer, average and max pooling
of its first layer's output, its first layer's direct convolution) at several batch
sizes it times the serial and the parallel compilation of each kernel in turns and
prints the medians, serial/parallel (below 1: one thread is faster) and which one
the kernel set runs at that size. Writes benchmarks/results/<machine kind>/bench_parallel_launch.json.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import minicnn as mc  # noqa: E402


def kernel_cases(kernels, n, rng):
    """name -> (kernel, arguments) at batch ``n``."""
    x2 = rng.random((n, 14, 14, 6), dtype=np.float32)
    col = np.empty((n, 10, 10, 5, 5, 6), np.float32)
    a1 = rng.random((n, 28, 28, 6), dtype=np.float32)
    p1 = np.empty((n, 14, 14, 6), np.float32)
    x1 = rng.random((n, 28, 28, 1), dtype=np.float32)
    w1 = rng.random((5, 5, 1, 6), dtype=np.float32)
    return {
        "im2col 14x14x6 k5": (kernels.im2col, (x2, 5, 5, 1, 1, 0, 0, 10, 10, 0.0, col)),
        "col2im 14x14x6 k5": (kernels.col2im, (col, 1, 1, 0, 0, x2.copy())),
        "avg pool 28x28x6 2/2": (kernels.avg_pool_forward, (a1, 2, 2, 2, 2, 0, 0, p1)),
        "max pool 28x28x6 2/2": (kernels.extreme_pool_forward,
                                 (a1, 2, 2, 2, 2, 0, 0, True, p1,
                                  np.empty(p1.shape, np.int32))),
        "direct conv 28x28x1->6 k5": (kernels.direct_conv_forward,
                                      (x1, w1, 2, 2, np.empty((n, 28, 28, 6), np.float32))),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512, 2048])
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    if "numba" not in mc.backend.available():
        print("numba is not installed: nothing to compare")
        return 1
    from minicnn.kernels import numba_cpu, numba_launch
    info = _common.environment(512 if args.smoke else 2048)
    _common.print_environment(info)
    rng = np.random.default_rng(0)
    results = {"environment": info, "parallel_min_values": numba_launch.PARALLEL_MIN_VALUES,
               "cases": []}
    print(f"{'kernel':<28} {'batch':>6} {'values':>7} {'serial':>9} {'parallel':>9} "
          f"{'ser/par':>7}  runs")
    for n in ([8] if args.smoke else args.batches):
        for name, (kernel, kargs) in kernel_cases(numba_cpu, n, rng).items():
            largest = max(a.size for a in kargs if isinstance(a, np.ndarray))
            med = _common.interleaved_medians(
                {"serial": lambda k=kernel, a=kargs: k.serial(*a),
                 "parallel": lambda k=kernel, a=kargs: k.parallel(*a)},
                repeats=3 if args.smoke else max(7, 4096 // n), pause=False)
            ratio = med["serial"] / med["parallel"]
            runs = "parallel" if largest >= numba_launch.PARALLEL_MIN_VALUES else "serial"
            print(f"{name:<28} {n:>6} {largest / 1e6:>6.1f}M {med['serial'] * 1e3:>7.3f}ms "
                  f"{med['parallel'] * 1e3:>7.3f}ms {ratio:>7.2f}  {runs}")
            results["cases"].append({"kernel": name, "batch": n, "values": largest,
                                     "ms": {k: v * 1e3 for k, v in med.items()},
                                     "serial_over_parallel": ratio, "runs": runs})
    print(f"the kernel set runs a kernel in parallel when its largest array has "
          f"{numba_launch.PARALLEL_MIN_VALUES:,} values or more")
    _common.save_results("bench_parallel_launch", results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
