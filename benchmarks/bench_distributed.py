"""LeNet-5 epoch on one machine: 1 process x all cores against N MPI ranks sharing
the cores, with the time spent in the gradients' Allreduce.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_distributed.py
    python benchmarks/bench_distributed.py --smoke     # seconds; figures mean nothing

Both runs train the same global batch (``--batch-size`` rows a step: one process takes
them all, each of the N ranks ``batch / N`` of them, so the updates are the same
arithmetic), on the numba backend, for ``--epochs`` timed epochs after a warm-up
epoch; one process uses every core (numba's and OpenBLAS's threads), each rank
``cores / N`` of them (``minicnn.distributed.init`` shares them out). The ranks run
under ``mpiexec -n N`` (``pip install "minicnn[mpi]"``). Prints the median epoch times,
the speedup (one process's epoch time over the ranks': both use the same cores, so
this is the scaling efficiency of splitting the machine into ranks, 1.0 = as fast as
one process) and the share of the ranks' epoch spent in the gradients' Allreduce.
Writes benchmarks/results/<machine kind>/bench_distributed.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
import _common  # noqa: E402

import minicnn as mc  # noqa: E402
from lenet5 import lenet5, load_data  # noqa: E402


def train(x, y, batch, epochs, optimizer):
    """Seconds per epoch (a warm-up epoch first, not counted)."""
    mc.backend.set_backend("numba")
    mc.utils.set_random_seed(0)
    model = lenet5()
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:4 * batch], y[:4 * batch], batch_size=batch, epochs=1, verbose=0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, seed=0)
        times.append(time.perf_counter() - start)
    return times, model


def worker(args):
    """One rank of the MPI run: prints a JSON line (rank 0) with its figures."""
    ranks = mc.distributed.init()
    (x, y), _ = load_data(None)
    x, y = x[:args.images], y[:args.images]
    x, y = mc.distributed.shard(x, y)
    spent = []
    summed = ranks._sum

    def timed_sum(buffer):
        start = time.perf_counter()
        out = summed(buffer)
        spent.append(time.perf_counter() - start)
        return out
    ranks._sum = timed_sum
    optimizer = mc.distributed.DistributedOptimizer(mc.optimizers.Adam(1e-3))
    times, model = train(x, y, args.batch_size // ranks.size, args.epochs + 1, optimizer)
    steps = -(-len(x) // (args.batch_size // ranks.size))
    per_epoch_allreduce = sum(spent[-steps * args.epochs:]) / args.epochs if spent else 0.0
    if ranks.rank == 0:
        print(json.dumps({"epoch_seconds": times[1:], "allreduce_seconds": per_epoch_allreduce,
                          "ranks": ranks.size, "images_per_rank": len(x)}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="global rows per step")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs")
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ.setdefault("MINICNN_OFFLINE", "1")
        args.images, args.epochs, args.batch_size = 512, 1, 64
    if args.worker:
        return worker(args)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpiexec = None
    if mpiexec is None or not os.path.exists(mpiexec):
        print("mpi4py and mpiexec are not installed: pip install 'minicnn[mpi]'")
        return 1

    info = _common.environment(512 if args.smoke else 2048)
    _common.print_environment(info)
    (x, y), _ = load_data(None)
    x, y = x[:args.images], y[:args.images]
    print(f"training images: {len(x)}, global batch {args.batch_size}, "
          f"{args.epochs} timed epochs")
    one, _ = train(x, y, args.batch_size, args.epochs + 1, mc.optimizers.Adam(1e-3))
    one = one[1:]
    _common.settle()
    command = [mpiexec, "-n", str(args.ranks), sys.executable, os.path.abspath(__file__),
               "--worker", "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
               "--images", str(args.images)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        return 1
    ranks = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    t1, tn = statistics.median(one), statistics.median(ranks["epoch_seconds"])
    speedup = t1 / tn
    cores = os.cpu_count()
    print(f"1 process x {cores} threads:     epochs {', '.join(f'{t:.2f}s' for t in one)}  "
          f"median {t1:.2f} s")
    print(f"{args.ranks} ranks x {max(1, cores // args.ranks)} thread(s): epochs "
          f"{', '.join(f'{t:.2f}s' for t in ranks['epoch_seconds'])}  median {tn:.2f} s")
    print(f"speedup {speedup:.2f}x on the same {cores} cores (scaling efficiency "
          f"{speedup:.2f}: {args.ranks} ranks on {cores} cores against one process on all "
          f"of them, 1.0 = as fast); Allreduce {ranks['allreduce_seconds']:.2f} s per "
          f"epoch ({100 * ranks['allreduce_seconds'] / tn:.1f}% of the ranks' epoch)")
    results = {"environment": info, "images": len(x), "global_batch": args.batch_size,
               "one_process": {"threads": cores, "epoch_seconds": one, "median": t1},
               "ranks": dict(ranks, threads_per_rank=max(1, cores // args.ranks), median=tn),
               "speedup": speedup}
    _common.save_results("bench_distributed", results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
