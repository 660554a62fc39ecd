"""Run under ``mpiexec -n 2`` by tests/test_distributed.py.

    python tests/mpi_train.py equal convnet    # 2 ranks train; each checks it equals one process
    python tests/mpi_train.py equal batchnorm  # the same with BatchNormalization(synchronized=True)
    python tests/mpi_train.py equal graph      # the same with a functional graph
    python tests/mpi_train.py fail             # rank 1 raises mid-training: every rank must end

Exit 0 when every check holds, 1 otherwise.
"""
import sys

import numpy as np

import minicnn as mc
from minicnn import distributed
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D


def convnet(seed, kind="convnet"):
    mc.utils.set_random_seed(seed)
    if kind == "graph":  # a functional graph: fan-out, a residual Add, a shared conv
        inputs = mc.Input((8, 8, 1))
        a = Conv2D(3, 3, padding="same", activation="tanh")(inputs)
        shared = Conv2D(3, 3, padding="same", activation="tanh")
        h = mc.layers.Add()([shared(a), a])
        h = Flatten()(MaxPooling2D(2)(shared(h)))
        return mc.Model(inputs, Dense(4, activation="softmax")(h))
    middle = [BatchNormalization(synchronized=True)] if kind == "batchnorm" else []
    return mc.Sequential([Conv2D(3, 3, activation="tanh", input_shape=(8, 8, 1)), *middle,
                          MaxPooling2D(2), Flatten(), Dense(4, activation="softmax")])


def main(mode, kind="convnet"):
    mc.backend.set_backend("numpy")
    mc.backend.set_floatx("float64")
    comm = distributed.init()
    assert comm.size == 2, f"expected 2 ranks, got {comm.size}"
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 8, 8, 1)), rng.integers(0, 4, 32)
    model = convnet(seed=comm.rank, kind=kind)   # different weights on each rank...
    distributed.broadcast_weights(model)         # ...until rank 0's are everyone's
    model.compile(distributed.DistributedOptimizer(mc.optimizers.Adam(0.01)),
                  "sparse_categorical_crossentropy")
    xs, ys = distributed.shard(x, y)
    steps, batch = 4, 4
    for k in range(steps):
        if mode == "fail" and comm.rank == 1 and k == 2:
            raise RuntimeError("deliberate failure on rank 1")
        model.train_on_batch(xs[k * batch:(k + 1) * batch], ys[k * batch:(k + 1) * batch])

    single = convnet(seed=0, kind=kind)
    single.compile(mc.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    half = len(x) // 2
    for k in range(steps):
        rows = np.r_[k * batch:(k + 1) * batch, half + k * batch:half + (k + 1) * batch]
        single.train_on_batch(x[rows], y[rows])
    mine = model.get_weights()
    rank0 = comm.broadcast_arrays(mine)
    same_as_rank0 = all(np.array_equal(a, b) for a, b in zip(mine, rank0))
    close = all(np.allclose(a, b, rtol=1e-10, atol=1e-12)
                for a, b in zip(mine, single.get_weights()))
    if same_as_rank0 and close:
        print(f"rank {comm.rank}: rank weights equal single-process training", flush=True)
        return 0
    print(f"rank {comm.rank}: MISMATCH same_as_rank0={same_as_rank0} close={close}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(*(sys.argv[1:] or ["equal"])))
