"""Where the numba backend's direct convolution and its Winograd F(2x2, 3x3) beat
im2col + GEMM: the measurements behind ``direct_conv_suits`` and ``winograd_suits``
in ``minicnn/kernels/numba_cpu.py``.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv_paths.py
    python benchmarks/bench_conv_paths.py --smoke     # two tiny shapes, seconds

For each layer shape (stride 1; batch 128 for the direct cases, the batch given for
the 3x3 ones) it times one training pass of the layer (forward, weight gradient, and
the input gradient unless the layer is a network's first) on both paths, in turns,
and prints the median milliseconds, the ratio and the winner, beside the channels
and filters, the figures the kernel set chooses by.
Writes benchmarks/results/<machine kind>/bench_conv_paths.json.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.kernels import numba_cpu  # noqa: E402
from minicnn.ops import conv2d_backward, conv2d_forward  # noqa: E402

# (H=W, C, F, k, padding, needs dX)
SHAPES = [
    (28, 1, 6, 5, "same", False),    # LeNet-5's first layer
    (28, 1, 8, 3, "same", False),
    (28, 1, 16, 5, "same", False),
    (28, 1, 32, 3, "same", False),
    (32, 3, 6, 5, "valid", False),
    (32, 3, 8, 3, "same", False),
    (28, 3, 16, 5, "same", False),
    (14, 6, 16, 5, "valid", True),   # LeNet-5's second layer
    (28, 2, 8, 3, "same", True),
    (14, 2, 6, 5, "same", True),
    (14, 4, 4, 3, "same", True),
]
SMOKE_SHAPES = [(8, 1, 2, 3, "same", False), (8, 2, 2, 3, "valid", True)]
# 3x3 layers, Winograd against im2col: (batch, H=W, C, F, padding, needs dX)
WINOGRAD_SHAPES = [
    (32, 56, 64, 64, "same", True),     # bench_kernels.py's 3x3 case
    (128, 28, 8, 8, "same", True),
    (128, 28, 8, 16, "same", True),
    (128, 28, 16, 8, "same", True),
    (128, 28, 16, 16, "same", True),
    (128, 28, 32, 32, "same", True),
    (128, 14, 64, 64, "same", True),
    (32, 12, 256, 384, "valid", True),  # the AlexNet variant's three 3x3 layers
    (32, 10, 384, 384, "valid", True),
    (32, 8, 384, 256, "valid", True),
    (32, 7, 128, 128, "same", True),    # odd sizes: the last tile is half wasted
    (128, 32, 3, 32, "same", False),    # few channels
]
SMOKE_WINOGRAD_SHAPES = [(4, 8, 16, 16, "same", True)]


def layer_pass(x, w, padding, need_dx, path):
    """One training pass of the layer with the numba kernel set made to choose ``path``
    ("direct", "winograd" or "im2col")."""
    def run():
        saved = numba_cpu.direct_conv_suits, numba_cpu.winograd_suits
        numba_cpu.direct_conv_suits = lambda *shape: path == "direct"
        numba_cpu.winograd_suits = lambda *shape: path == "winograd"
        try:
            y, cache = conv2d_forward(x, w, None, (1, 1), padding)
            conv2d_backward(np.ones_like(y), cache, need_dx=need_dx)
        finally:
            numba_cpu.direct_conv_suits, numba_cpu.winograd_suits = saved
    return run


def compare(results, key, name, x, w, padding, need_dx, path, chosen, repeats):
    med = _common.interleaved_medians(
        {path: layer_pass(x, w, padding, need_dx, path),
         "im2col": layer_pass(x, w, padding, need_dx, "im2col")},
        repeats=repeats, pause=False)
    ratio = med[path] / med["im2col"]
    winner = path if ratio < 1 else "im2col"
    print(f"{name:<44} {med[path] * 1e3:>7.2f}ms {med['im2col'] * 1e3:>7.2f}ms "
          f"{ratio:>6.2f}  {winner:<8} {chosen}")
    results[key].append({"name": name, "chosen": chosen,
                         "ms": {k: v * 1e3 for k, v in med.items()},
                         f"{path}_over_im2col": ratio, "faster": winner})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    if "numba" not in mc.backend.available():
        print("numba is not installed: nothing to compare")
        return 1
    mc.backend.set_backend("numba")
    info = _common.environment(512 if args.smoke else 2048)
    _common.print_environment(info)
    batch = 8 if args.smoke else 128
    rng = np.random.default_rng(0)
    results = {"environment": info, "batch": batch, "cases": [], "winograd_cases": []}
    repeats = 3 if args.smoke else args.repeats
    print(f"{'layer (batch ' + str(batch) + ', stride 1)':<44} {'direct':>9} "
          f"{'im2col':>9} {'ratio':>6}  faster   chosen")
    for h, c, f, k, padding, need_dx in (SMOKE_SHAPES if args.smoke else SHAPES):
        x = rng.standard_normal((batch, h, h, c)).astype(np.float32)
        w = (rng.standard_normal((k, k, c, f)) * 0.1).astype(np.float32)
        name = f"{h}x{h}x{c}->{f} k{k} {padding}{' +dX' if need_dx else ''}"
        chosen = "direct" if numba_cpu.direct_conv_suits(c, f, k, k, 1, 1) else "im2col"
        compare(results, "cases", name, x, w, padding, need_dx, "direct", chosen, repeats)
    print(f"the kernel set convolves directly at stride 1 with up to "
          f"{numba_cpu.DIRECT_CONV_MAX_CHANNELS} channels, {numba_cpu.DIRECT_CONV_MAX_FILTERS} "
          f"filters and a window of {numba_cpu.DIRECT_CONV_MIN_WINDOW} cells or more\n")
    print(f"{'3x3 layer (stride 1)':<44} {'winograd':>9} {'im2col':>9} {'ratio':>6}  "
          f"faster   chosen")
    for n, h, c, f, padding, need_dx in (SMOKE_WINOGRAD_SHAPES if args.smoke
                                         else WINOGRAD_SHAPES):
        x = rng.standard_normal((n, h, h, c)).astype(np.float32)
        w = (rng.standard_normal((3, 3, c, f)) * 0.1).astype(np.float32)
        name = f"{n}x{h}x{h}x{c}->{f} {padding}{' +dX' if need_dx else ''}"
        chosen = "winograd" if numba_cpu.winograd_suits(c, f, 3, 3, 1, 1) else "im2col"
        compare(results, "winograd_cases", name, x, w, padding, need_dx, "winograd", chosen,
                repeats)
    print(f"the kernel set runs 3x3 stride-1 layers as Winograd F(2x2, 3x3) with at least "
          f"{numba_cpu.WINOGRAD_MIN_CHANNELS} channels and {numba_cpu.WINOGRAD_MIN_FILTERS} "
          f"filters")
    _common.save_results("bench_conv_paths", results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
