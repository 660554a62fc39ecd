"""Data-parallel training over MPI: the same model on many processes and machines.

    mpiexec -n 2 python examples/lenet5.py --distributed

Every process (a *rank*) holds the whole model and trains on its own part of the
data; after each backward pass the ranks add up their gradients with one MPI
Allreduce and divide by their number, so every rank applies the same averaged
gradient and the weights stay identical everywhere -- what ChainerMN and Horovod do.
MPI is mpi4py's (``pip install "minicnn[mpi]"``: mpi4py and MPICH's wheels):

    comm = minicnn.distributed.init()            # size 1, no MPI needed, without mpiexec
    x, y = minicnn.distributed.shard(x, y)        # this rank's equal, disjoint part
    model.compile(optimizer=minicnn.distributed.DistributedOptimizer("adam"), ...)
    minicnn.distributed.broadcast_weights(model)  # everyone starts from rank 0's weights
    model.fit(x, y, ...)                          # unchanged

The training loop (``minicnn.training``) asks the optimizer for its communicator, so
it runs the same code on one process or many: the progress bar, the printed messages
and the callbacks (logs, CSV, checkpoints) are rank 0's, the epoch's metrics and the
validation figures are averaged over the ranks, EarlyStopping's decision and a Ctrl-C
reach every rank, and a NaN loss on any rank stops them all at the same step.

Gradients travel through host (NumPy) buffers, also on the cupy backend (where each
rank takes the GPU of its local rank): the MPI from the wheels is not CUDA-aware.
An exception on any rank prints the rank and the error and aborts every rank, so a
failed run never hangs in a collective call.
"""
import os
import sys
import traceback

import numpy as np

from . import backend, optimizers
from .backend import to_device, to_host

# environment variables MPI launchers set in every process they start
_LAUNCHED_BY = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
_LOCAL_RANK = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


class Communicator:
    """minicnn's view of an MPI communicator: the few collective calls training needs,
    on NumPy buffers. Without ``comm`` it is a single process (every call is the
    identity, nothing is imported). ``comm`` may be an mpi4py communicator or any
    object with its methods ``Get_rank``, ``Get_size``, ``Allreduce(send, recv)``
    (a sum), ``Bcast(buffer, root)`` and ``bcast(obj, root)`` -- the tests use an
    in-process stand-in."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())

    def _sum(self, buffer):
        total = np.empty_like(buffer)
        self.comm.Allreduce(buffer, total)
        return total

    def average(self, arrays):
        """The mean over the ranks of each array (gradients), with one Allreduce of one
        flat host buffer; arrays come back where they came from (host or device)."""
        arrays = list(arrays)
        if self.size == 1 or not arrays:
            return arrays
        host = [np.asarray(to_host(a)) for a in arrays]
        flat = self._sum(_flat(host))
        flat /= self.size
        return [part if isinstance(a, np.ndarray) else to_device(part, dtype=a.dtype)
                for a, part in zip(arrays, _unflat(flat, host))]

    def sum(self, vector):
        """A vector added over the ranks (synchronized batch statistics), returned
        where it came from (host or device)."""
        if self.size == 1:
            return vector
        total = self._sum(np.ascontiguousarray(to_host(vector)))
        return total if isinstance(vector, np.ndarray) else to_device(total, dtype=vector.dtype)

    def mean_logs(self, logs):
        """A dict of floats averaged over the ranks (the same keys on every rank)."""
        if self.size == 1 or not logs:
            return dict(logs)
        keys = sorted(logs)
        values = self._sum(np.array([float(logs[k]) for k in keys], dtype=np.float64))
        return {k: float(v) / self.size for k, v in zip(keys, values)}

    def any(self, flag):
        """True on every rank when ``flag`` is true on at least one."""
        if self.size == 1:
            return bool(flag)
        return bool(self._sum(np.array([1 if flag else 0], dtype=np.int64))[0] > 0)

    def all(self, flag):
        """True on every rank when ``flag`` is true on all of them."""
        return not self.any(not flag)

    def broadcast(self, value, root=0):
        """A Python value (a flag, a small dict) from ``root`` to every rank."""
        return value if self.size == 1 else self.comm.bcast(value, root=root)

    def broadcast_arrays(self, arrays, root=0):
        """Host arrays from ``root``, as one flat buffer."""
        arrays = [np.ascontiguousarray(a) for a in arrays]
        if self.size == 1 or not arrays:
            return arrays
        flat = _flat(arrays)
        self.comm.Bcast(flat, root=root)
        return _unflat(flat, arrays)


def _flat(arrays):
    """One contiguous buffer holding every array, in order: one message for all."""
    return np.concatenate([a.ravel() for a in arrays]).astype(np.result_type(*arrays))


def _unflat(flat, like):
    """The arrays of ``like``'s shapes and dtypes back out of ``flat``."""
    out, start = [], 0
    for a in like:
        out.append(flat[start:start + a.size].reshape(a.shape).astype(a.dtype, copy=False))
        start += a.size
    return out


LOCAL = Communicator()
_WORLD = []  # the communicator init() made, once per process


def launched_by_mpi():
    """Whether an MPI launcher (mpiexec, mpirun, srun) started this process."""
    return any(name in os.environ for name in _LAUNCHED_BY)


def init():
    """The communicator of all ranks: MPI's COMM_WORLD under an MPI launcher (importing
    mpi4py then), else a single process without MPI. The first call under MPI also
    makes an uncaught exception on any rank abort every rank (printing which rank and
    why) and, on the cupy backend, picks the GPU of this rank's local rank."""
    if _WORLD:
        return _WORLD[0]
    if not launched_by_mpi():
        _WORLD.append(LOCAL)
        return LOCAL
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("minicnn.distributed: this process was started by an MPI launcher "
                          "but mpi4py is not installed: pip install 'minicnn[mpi]'") from None
    world = Communicator(MPI.COMM_WORLD)
    _abort_all_on_error(MPI.COMM_WORLD, world.rank)
    if world.size > 1 and backend.get_backend() == "cupy":
        _use_local_gpu()
    _share_cores(_ranks_on_this_machine())
    _WORLD.append(world)
    return world


def _ranks_on_this_machine():
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if name in os.environ:
            return max(1, int(os.environ[name]))
    return 1


def _share_cores(ranks_here):
    """Give each of the ``ranks_here`` ranks on this machine its share of the cores for
    numba's loops and for BLAS: with every rank running as many threads as there are
    cores, 2 ranks on 2 cores ran a LeNet-5 step 4x slower than 1 process (OpenBLAS's
    spinning threads against numba's, times two). Needs threadpoolctl for BLAS (in the
    ``mpi`` extra); without it BLAS keeps its threads."""
    if ranks_here <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // ranks_here)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _BLAS_LIMITS.append(threadpool_limits(limits=threads, user_api="blas"))


_BLAS_LIMITS = []  # kept: the limit holds while the object lives


def _abort_all_on_error(comm, rank):
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)  # every rank got the signal and stops on its own
            return
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"minicnn.distributed: rank {rank} failed, aborting every rank:\n"
                         f"{text}")
        sys.stderr.flush()
        comm.Abort(1)
    sys.excepthook = hook


def _use_local_gpu():
    import cupy
    local = next((int(os.environ[n]) for n in _LOCAL_RANK if n in os.environ), 0)
    cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount()).use()


def _ranks(comm):
    """``comm`` as a Communicator: init()'s when None, wrapped when an MPI communicator."""
    if comm is None:
        return init()
    return comm if isinstance(comm, Communicator) else Communicator(comm)


def DistributedOptimizer(optimizer, comm=None):  # noqa: N802 - named like Horovod's
    """``optimizer`` (an instance, ``"sgd"`` or ``"adam"``) made to average its
    gradients over the ranks before each update: one Allreduce of one flat buffer per
    step. Returns the optimizer itself (same class, same state and saving), now
    holding the ranks' communicator, which the training loop also uses."""
    opt = optimizers.get(optimizer)
    opt.communicator = _ranks(comm)
    return opt


def broadcast_weights(model, root=0, comm=None):
    """Give every rank ``root``'s weights (one Bcast of one flat buffer)."""
    comm = _ranks(comm)
    if comm.size > 1:
        model.set_weights(comm.broadcast_arrays(model.get_weights(), root=root))


def shard(x, y=None, comm=None):
    """This rank's part of the data: ``len(x) // size`` consecutive samples, the same
    number on every rank (the last ``len(x) % size`` samples are left out), so every
    rank takes the same number of steps and the parts never overlap."""
    comm = _ranks(comm)
    if y is not None and len(x) != len(y):
        raise ValueError(f"shard: x and y must have the same number of samples. "
                         f"Received: {len(x)} and {len(y)}")
    per_rank = len(x) // comm.size
    if per_rank == 0:
        raise ValueError(f"shard: {len(x)} samples cannot give each of {comm.size} ranks one")
    part = slice(comm.rank * per_rank, (comm.rank + 1) * per_rank)
    return x[part] if y is None else (x[part], y[part])
