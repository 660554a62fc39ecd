"""Data-parallel training: the communicator, DistributedOptimizer, shard and
broadcast_weights on an in-process stand-in communicator (ranks as threads), the
training loop's behaviour on several ranks, and a real 2-rank run under mpiexec."""
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import minicnn as mc
from minicnn import distributed
from minicnn.callbacks import EarlyStopping
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D

HERE = os.path.dirname(os.path.abspath(__file__))


class ThreadWorld:
    """``size`` ranks living in threads of this process, with MPI's calls as mpi4py
    spells them. Sums are made in rank order, so every rank gets the same bits."""

    def __init__(self, size):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=30)
        self.slots = [None] * size

    def comm(self, rank):
        return ThreadComm(self, rank)


class ThreadComm:
    def __init__(self, world, rank):
        self.world, self.rank = world, rank
        self.allreduce_calls = 0

    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return self.rank

    def Get_size(self):  # noqa: N802
        return self.world.size

    def _exchange(self, value):
        w = self.world
        w.slots[self.rank] = value
        w.barrier.wait()
        values = list(w.slots)
        w.barrier.wait()
        return values

    def Allreduce(self, send, recv):  # noqa: N802
        self.allreduce_calls += 1
        values = self._exchange(np.array(send, copy=True))
        total = values[0].copy()
        for v in values[1:]:
            total += v
        recv[...] = total

    def Bcast(self, buffer, root=0):  # noqa: N802
        values = self._exchange(np.array(buffer, copy=True))
        buffer[...] = values[root]

    def bcast(self, obj, root=0):
        return self._exchange(obj)[root]


def run_ranks(size, work, build=None):
    """``work(rank, comm)`` on ``size`` threads, or ``work(rank, comm, model)`` with one
    ``build()`` per rank made here first (the ranks' threads share this process's global
    generator, which a process of a real run has to itself); results in rank order."""
    world = ThreadWorld(size)
    results, errors = [None] * size, []
    built = [build() for _ in range(size)] if build is not None else None

    def target(rank):
        try:
            args = (rank, world.comm(rank)) + ((built[rank],) if built else ())
            results[rank] = work(*args)
        except BaseException as exc:  # reported below
            errors.append(exc)
            world.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.fixture(autouse=True)
def numpy_float64():
    mc.backend.set_backend("numpy")  # the threads share one backend; numba's pool is one
    mc.backend.set_floatx("float64")
    yield
    mc.backend.set_floatx("float32")


def convnet():
    mc.utils.set_random_seed(0)
    model = mc.Sequential([Conv2D(3, 3, activation="tanh", input_shape=(8, 8, 1)),
                           MaxPooling2D(2), Flatten(), Dense(4, activation="softmax")],
                          name="data_parallel")
    return model


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 1)), rng.integers(0, 4, n)


# ---------------------------------------------------------------------------------
# the communicator, shard, broadcast
# ---------------------------------------------------------------------------------
def test_one_process_needs_no_mpi(monkeypatch):
    for name in distributed._LAUNCHED_BY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "_WORLD", [])
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # importing it would fail
    comm = distributed.init()
    assert comm.size == 1 and comm.rank == 0 and comm is distributed.LOCAL
    grads = [np.ones(3)]
    assert distributed.LOCAL.average(grads)[0] is grads[0]
    assert mc.optimizers.SGD().communicator is distributed.LOCAL


def test_shard_gives_equal_disjoint_parts():
    x, y = np.arange(11), np.arange(11) * 10
    parts = run_ranks(3, lambda rank, comm: distributed.shard(x, y, comm=comm))
    assert [len(px) for px, _ in parts] == [3, 3, 3]  # 11 // 3, the last 2 left out
    seen = np.concatenate([px for px, _ in parts])
    assert len(set(seen.tolist())) == 9
    for px, py in parts:
        np.testing.assert_array_equal(py, px * 10)
    with pytest.raises(ValueError, match="3 ranks"):
        distributed.shard(x[:2], comm=ThreadWorld(3).comm(0))


def test_broadcast_weights_gives_every_rank_rank_0s():
    def build():
        mc.utils.set_random_seed(len(models))  # different weights on each rank
        models.append(mc.Sequential([Dense(3, input_shape=(2,)), Dense(2)]))
        return models[-1]

    def work(rank, comm, model):
        distributed.broadcast_weights(model, comm=comm)
        return model.get_weights()
    models = []
    results = run_ranks(2, work, build)
    mc.utils.set_random_seed(0)
    expected = mc.Sequential([Dense(3, input_shape=(2,)), Dense(2)]).get_weights()
    for weights in results:
        for w, e in zip(weights, expected):
            np.testing.assert_array_equal(w, e)


# ---------------------------------------------------------------------------------
# DistributedOptimizer: P ranks of B rows compute what one process does on P*B rows
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_equal_one_process_on_the_concatenated_batches(optimizer):
    x, y = data(24)
    steps, batch = 3, 4

    def work(rank, comm, model):
        opt = distributed.DistributedOptimizer(optimizer, comm=comm)
        model.compile(opt, "sparse_categorical_crossentropy")
        xs, ys = distributed.shard(x, y, comm=comm)
        for k in range(steps):
            model.train_on_batch(xs[k * batch:(k + 1) * batch], ys[k * batch:(k + 1) * batch])
        return model.get_weights(), comm.allreduce_calls

    (w0, calls0), (w1, calls1) = run_ranks(2, work, convnet)
    assert calls0 == calls1 == steps  # one fused Allreduce per step
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)  # identical on every rank

    single = convnet()
    single.compile(optimizer, "sparse_categorical_crossentropy")
    half = len(x) // 2
    for k in range(steps):
        rows = np.r_[k * batch:(k + 1) * batch, half + k * batch:half + (k + 1) * batch]
        single.train_on_batch(x[rows], y[rows])
    for a, b in zip(w0, single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    moved = max(np.abs(a - b).max() for a, b in zip(w0, convnet().get_weights()))
    assert moved > 1e-3  # training did change the weights


def bn_convnet(synchronized=True):
    mc.utils.set_random_seed(0)
    return mc.Sequential([Conv2D(3, 3, input_shape=(8, 8, 1)),
                          BatchNormalization(synchronized=synchronized), MaxPooling2D(2),
                          Flatten(), Dense(4, activation="softmax")], name="sync_bn")


@pytest.mark.parametrize("size", [2, 3])
def test_synchronized_batch_norm_equals_one_process_on_all_rows(size):
    """P ranks of B rows with BatchNormalization(synchronized=True): the weights, the
    moving statistics and the updates are those of one process on the P*B rows."""
    x, y = data(36)
    steps, batch = 3, 4
    per_rank = len(x) // size

    def work(rank, comm, model):
        model.layers[1].communicator = distributed.Communicator(comm)
        model.compile(distributed.DistributedOptimizer("adam", comm=comm),
                      "sparse_categorical_crossentropy")
        xs, ys = distributed.shard(x, y, comm=comm)
        for k in range(steps):
            model.train_on_batch(xs[k * batch:(k + 1) * batch], ys[k * batch:(k + 1) * batch])
        return model.get_weights()

    results = run_ranks(size, work, bn_convnet)
    single = bn_convnet()
    single.compile("adam", "sparse_categorical_crossentropy")
    for k in range(steps):
        rows = np.concatenate([np.arange(r * per_rank + k * batch, r * per_rank + (k + 1) * batch)
                               for r in range(size)])
        single.train_on_batch(x[rows], y[rows])
    for weights in results:
        for a, b in zip(weights, single.get_weights()):  # moving statistics included
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_unsynchronized_batch_norm_differs_so_the_test_above_can_fail():
    x, y = data(16)

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer("sgd", comm=comm),
                      "sparse_categorical_crossentropy")
        xs, ys = distributed.shard(x, y, comm=comm)
        model.train_on_batch(xs[:4], ys[:4])
        return model.get_weights()

    w0, _ = run_ranks(2, work, lambda: bn_convnet(synchronized=False))
    single = bn_convnet(synchronized=False)
    single.compile("sgd", "sparse_categorical_crossentropy")
    single.train_on_batch(x[np.r_[0:4, 8:12]], y[np.r_[0:4, 8:12]])
    assert max(np.abs(a - b).max() for a, b in zip(w0, single.get_weights())) > 1e-6


def test_synchronized_on_one_process_changes_nothing():
    x, y = data(8)
    models = [bn_convnet(True), bn_convnet(False)]
    for model in models:
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_array_equal(a, b)


def test_distributed_optimizer_keeps_its_class_state_and_saving(tmp_path):
    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer(mc.optimizers.Adam(0.01), comm=comm),
                      "sparse_categorical_crossentropy")
        x, y = data(8, seed=rank)
        model.train_on_batch(x, y)
        if rank == 0:
            model.save(str(tmp_path / "m.npz"))
        return type(model.optimizer).__name__, model.optimizer.iterations
    assert run_ranks(2, work, convnet) == [("Adam", 1), ("Adam", 1)]
    loaded = mc.models.load_model(str(tmp_path / "m.npz"))
    assert loaded.optimizer.iterations == 1 and loaded.optimizer.communicator.size == 1


# ---------------------------------------------------------------------------------
# the training loop on several ranks
# ---------------------------------------------------------------------------------
def test_fit_on_two_ranks_logs_from_rank_0_with_the_ranks_mean(capsys):
    x, y = data(24)
    x_val, y_val = data(8, seed=5)

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer("sgd", comm=comm),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        xs, ys = distributed.shard(x, y, comm=comm)
        vx, vy = distributed.shard(x_val, y_val, comm=comm)
        history = model.fit(xs, ys, batch_size=4, epochs=2, verbose=2, seed=3,
                            validation_data=(vx, vy))
        local = model.evaluate(vx, vy, return_dict=True)
        return history.history, local, model.get_weights()

    (h0, val0, w0), (h1, val1, w1) = run_ranks(2, work, convnet)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::2] == ["Epoch 1/2", "Epoch 2/2"] and len(lines) == 4  # rank 0 only
    assert h0 == h1  # every rank holds the ranks' mean
    assert h0["val_loss"][-1] == pytest.approx((val0["loss"] + val1["loss"]) / 2, rel=1e-12)
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_on_rank_0_stops_every_rank():
    x, y = data(16)

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer(mc.optimizers.SGD(0.0), comm=comm),
                      "sparse_categorical_crossentropy")
        xs, ys = distributed.shard(x, y, comm=comm)
        stop = EarlyStopping(monitor="loss", patience=0, min_delta=1.0)
        history = model.fit(xs, ys, batch_size=4, epochs=10, verbose=0, callbacks=[stop])
        return len(history.history["loss"])
    assert run_ranks(2, work, convnet) == [2, 2]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_nan_loss_on_one_rank_stops_both_at_the_same_step(capsys):
    x, y = data(16)
    x[12] = np.nan  # in rank 1's third batch

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer("sgd", comm=comm),
                      "sparse_categorical_crossentropy")
        xs, ys = distributed.shard(x, y, comm=comm)
        model.fit(xs, ys, batch_size=2, epochs=1, shuffle=False, verbose=0,
                  check_numerics=False)
        return model.optimizer.iterations, model.get_weights()
    (it0, w0), (it1, w1) = run_ranks(2, work, convnet)
    assert it0 == it1 == 2
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    assert capsys.readouterr().out.count("Training stopped") == 1


# ---------------------------------------------------------------------------------
# a real MPI run: mpiexec -n 2
# ---------------------------------------------------------------------------------
def mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    for candidate in (os.path.join(os.path.dirname(sys.executable), "mpiexec"),
                      shutil.which("mpiexec")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


needs_mpi = pytest.mark.skipif(mpiexec() is None, reason="mpi4py and mpiexec are not installed "
                                                        "(pip install 'minicnn[mpi]')")


def run_mpi(*args, timeout=240):
    env = dict(os.environ, MINICNN_OFFLINE="1", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    result = subprocess.run([mpiexec(), "-n", "2", sys.executable,
                             os.path.join(HERE, "mpi_train.py"), *args],
                            capture_output=True, text=True, timeout=timeout, env=env)
    return result, time.perf_counter() - start


@needs_mpi
@pytest.mark.parametrize("model", ["convnet", "batchnorm", "graph"])
def test_two_mpi_ranks_equal_one_process(model):
    result, _ = run_mpi("equal", model)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("rank weights equal single-process training") == 2, result.stdout


@needs_mpi
def test_an_exception_on_one_rank_ends_the_run():
    result, seconds = run_mpi("fail", timeout=120)
    assert result.returncode != 0
    assert "rank 1 failed" in result.stderr and "deliberate failure" in result.stderr
    assert seconds < 60


@needs_mpi
def test_the_distributed_benchmark_runs_its_smoke_configuration():
    script = os.path.join(HERE, "..", "benchmarks", "bench_distributed.py")
    result = subprocess.run([sys.executable, script, "--smoke"], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, MINICNN_OFFLINE="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "speedup" in result.stdout and "Allreduce" in result.stdout


@needs_mpi
def test_the_lenet5_example_runs_distributed(tmp_path):
    env = dict(os.environ, MINICNN_OFFLINE="1")
    result = subprocess.run(
        [mpiexec(), "-n", "2", sys.executable, os.path.join(HERE, "..", "examples", "lenet5.py"),
         "--distributed", "--epochs", "1", "--verbose", "2", "--out", str(tmp_path),
         "--data", mc.datasets.subset_dir()],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test accuracy:") == 1  # rank 0 speaks
    assert "2 ranks, 5000 training images each" in result.stdout
    assert os.path.isfile(tmp_path / "lenet5.npz")


def test_a_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(monkeypatch, capsys):
    """Rank 1 alone sees a Ctrl-C after its second step: both ranks stop there, with
    the same weights, and rank 0 says so once."""
    from minicnn import training
    pending = {}

    class Interrupt(training._DeferredInterrupt):
        requested = property(
            lambda self: self.__dict__.get("_asked", False)
            or pending.get(threading.get_ident(), lambda: False)(),
            lambda self, value: self.__dict__.__setitem__("_asked", value))

    monkeypatch.setattr(training, "_DeferredInterrupt", Interrupt)
    x, y = data(16)

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer("sgd", comm=comm),
                      "sparse_categorical_crossentropy")
        if rank == 1:
            pending[threading.get_ident()] = lambda: model.optimizer.iterations >= 2
        xs, ys = distributed.shard(x, y, comm=comm)
        model.fit(xs, ys, batch_size=2, epochs=3, shuffle=False, verbose=0)
        return model.optimizer.iterations, model.get_weights()

    (it0, w0), (it1, w1) = run_ranks(2, work, convnet)
    assert it0 == it1 == 2
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    out = capsys.readouterr().out
    assert out.count("Training interrupted in epoch 1, step 2/4") == 1, out
