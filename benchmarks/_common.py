"""What every benchmark script shares: medians of repeated timings, the machine's
float32 GEMM peak, how busy the rest of the machine was, the BLAS environment, and
writing results as JSON and a PNG plot under benchmarks/results/.

On a GPU (the ``cupy`` backend) the same helpers time device work: a ``sync``
callable (``cupy_sync`` or ``torch.cuda.synchronize``) runs before the clock starts
and before it stops, since a GPU call returns as soon as its kernels are queued. The
GPU's own figures (its name, CUDA versions, its float32 GEMM peak measured with CuPy,
the device memory each framework held at its peak) come from the helpers below.
"""
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
import traceback
import warnings

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timed(fn, sync=None):
    """Wall time of one ``fn()`` in seconds. With ``sync`` (a device synchronisation),
    the device is idle when the clock starts and has finished ``fn``'s work when it
    stops."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def median_time(fn, repeats=5, warmup=1, sync=None):
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median([timed(fn, sync) for _ in range(repeats)])


# After a call, OpenBLAS's and OpenMP's worker threads keep spinning for a while
# (OpenBLAS up to ~0.1 s) before they sleep; a different library called in that
# window shares the cores with them. Measured here: PyTorch's 3x3 convolution took
# 146 ms right after a minicnn call and 85 ms after this pause.
SETTLE_SECONDS = 0.3


def settle():
    """Let the previous library's worker threads go to sleep before timing another."""
    time.sleep(SETTLE_SECONDS)


def interleaved_medians(fns, repeats=5, warmup=1, repeats_for=None, sync_for=None,
                        pause=True, failures=None):
    """Median wall time (seconds) of each callable in ``fns`` (name -> fn), timed in
    turns (a, b, c, a, b, c, ...) so that a change in the machine's load during the
    run hits every implementation alike, with a pause (``settle``) before each call.
    ``repeats_for`` may change the count for some names (fewer for slow ones, more
    for fast GPU calls); ``sync_for`` maps a name to its device synchronisation
    (see ``timed``); ``pause=False`` leaves out the pause (nothing to settle when
    only GPU work is timed).

    With a dict ``failures``, an implementation that raises is reported (traceback on
    stderr), recorded there as ``name -> "Error: message"`` and left out of the
    result, and the others go on; without one, the exception propagates."""
    repeats_for, sync_for = repeats_for or {}, sync_for or {}
    live = dict(fns)

    def call(name, fn, timing):
        try:
            if pause:
                settle()
            if timing:
                return timed(fn, sync_for.get(name))
            fn()
            return None
        except Exception as exc:
            if failures is None:
                raise
            report_failure(name, exc, failures, "no figure for it here")
            live.pop(name, None)
            return None

    for name, fn in list(live.items()):
        for _ in range(warmup):
            if name in live:
                call(name, fn, False)
    times = {name: [] for name in live}
    for r in range(max([repeats_for.get(name, repeats) for name in live] or [0])):
        for name, fn in list(live.items()):
            if r < repeats_for.get(name, repeats):
                t = call(name, fn, True)
                if name in live:
                    times[name].append(t)
    return {name: statistics.median(t) for name, t in times.items() if name in live}


def report_failure(name, exc, failures, consequence="it is left out of what follows"):
    """Print ``exc``'s traceback to stderr under ``name`` and record it in ``failures``."""
    print(f"--- {name} failed:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    failures[name] = f"{exc.__class__.__name__}: {exc}"
    print(f"{name} failed ({one_line(failures[name])}); {consequence}", flush=True)


def one_line(text, limit=500):
    """``text`` with its whitespace runs (newlines too) made single spaces, cut at ``limit``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def gemm_peak(size=2048, repeats=7):
    """float32 GFLOP/s of NumPy's BLAS on a square product: the yardstick for
    'fraction of peak'."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    return 2 * size ** 3 / median_time(lambda: a @ b, repeats) / 1e9


# ---------------------------------------------------------------------------------
# backends and the GPU
# ---------------------------------------------------------------------------------
GPU_BACKENDS = ("cupy",)
TORCH_CUDA = "torch-cuda"                          # PyTorch on the GPU, cuDNN's defaults
TORCH_CUDA_TUNED = "torch-cuda-cudnn-benchmark"    # ... with cudnn.benchmark=True


def is_gpu_name(name):
    """Whether a framework column runs on the GPU."""
    return name in (TORCH_CUDA, TORCH_CUDA_TUNED) or \
        name in (f"minicnn-{b}" for b in GPU_BACKENDS)


def framework_names(backends, torch, torch_gpu, cudnn_benchmark):
    """The columns of a run: each minicnn backend, PyTorch on the CPU when a CPU
    backend is measured, PyTorch on the GPU (and tuned, if asked) when it can run."""
    names = [f"minicnn-{b}" for b in backends]
    if torch is not None and any(b not in GPU_BACKENDS for b in backends):
        names.append("torch")
    if torch_gpu is not None:
        names.append(TORCH_CUDA)
        if cudnn_benchmark:
            names.append(TORCH_CUDA_TUNED)
    return names


def select_backends(mc, requested, prog):
    """The minicnn backends to measure: ``requested`` (the --backends list) in its
    order, or by default every CPU backend that can run here. A requested backend
    that cannot run here ends the script with one line that says why (the text of
    ``set_backend``'s error), not a traceback."""
    if not requested:
        return [b for b in mc.backend.available() if b not in GPU_BACKENDS]
    names = list(dict.fromkeys(str(b).lower() for b in requested))
    available = mc.backend.available()
    for name in names:
        if name in available:
            continue
        current = mc.backend.get_backend()
        try:
            mc.backend.set_backend(name)
        except (RuntimeError, ValueError) as exc:
            raise SystemExit(f"{prog}: cannot benchmark the {name!r} backend here: "
                             f"{one_line(exc, 2000)}") from None
        mc.backend.set_backend(current)
    return names


def cupy_sync():
    """Wait until the current CUDA device has finished all queued work."""
    import cupy
    cupy.cuda.Device().synchronize()


def cupy_pool_reset():
    """Hand the CuPy memory pool's cached (unused) blocks back to the device, so that
    ``cupy_pool_bytes`` afterwards counts only what is allocated from then on (and
    the arrays still alive)."""
    import cupy
    cupy.cuda.Device().synchronize()
    cupy.get_default_memory_pool().free_all_blocks()


def cupy_pool_bytes():
    """Device bytes the CuPy memory pool holds. The pool keeps every block it has
    allocated until ``free_all_blocks``, so this is the high-water mark since the
    last ``cupy_pool_reset``."""
    import cupy
    cupy.cuda.Device().synchronize()
    return cupy.get_default_memory_pool().total_bytes()


def torch_peak_reset(torch):
    """Start PyTorch's record of the most CUDA memory allocated at once afresh."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()


def torch_peak_bytes(torch):
    """The most CUDA memory PyTorch's tensors took at once since ``torch_peak_reset``."""
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def torch_cuda_or_none(torch):
    """``torch`` when it can run on a CUDA device here, else None (with a notice)."""
    if torch is None:
        return None
    if not torch.cuda.is_available():
        print(f"PyTorch {torch.__version__} sees no CUDA device (torch.version.cuda="
              f"{torch.version.cuda}): the torch-cuda columns are skipped (a CUDA build of "
              "PyTorch gives the GPU peer figures)")
        return None
    return torch


def gpu_gemm_peak(size=8192, repeats=5):
    """float32 GFLOP/s of cuBLAS (through ``cupy.matmul``) on a square product,
    synchronised, median of ``repeats`` after one warm-up: the GPU's yardstick for
    'fraction of peak'. (It is TF32 tensor-core speed only if CUPY_TF32=1 is set.)"""
    import cupy

    def product_seconds():
        rng = np.random.default_rng(0)
        a = cupy.asarray(rng.random((size, size), dtype=np.float32))
        b = cupy.asarray(rng.random((size, size), dtype=np.float32))
        c = cupy.empty((size, size), dtype=np.float32)
        return median_time(lambda: cupy.matmul(a, b, out=c), repeats, sync=cupy_sync)

    seconds = product_seconds()
    cupy_pool_reset()  # the matrices are gone: give their memory back to the device
    return 2 * size ** 3 / seconds / 1e9


def _cuda_version(number):
    """CUDA's version integer (e.g. 13000) as text ("13.0")."""
    return f"{number // 1000}.{number % 1000 // 10}"


def gpu_environment(torch=None):
    """The GPU facts a reader needs next to GPU figures: device, CUDA runtime and
    driver, CuPy, and PyTorch's CUDA build and its float32 settings (cuDNN may use
    TF32 tensor cores for float32 convolutions, which PyTorch allows by default)."""
    info = {}
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
        name = props["name"]
        info["gpu"] = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        if "totalGlobalMem" in props:
            info["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2 ** 30, 1)
        if "major" in props:
            info["gpu_compute_capability"] = f"{props['major']}.{props.get('minor', 0)}"
        info["cuda_runtime"] = _cuda_version(cupy.cuda.runtime.runtimeGetVersion())
        info["cuda_driver"] = _cuda_version(cupy.cuda.runtime.driverGetVersion())
        info["cupy"] = getattr(cupy, "__version__", "?")
    except Exception as exc:  # the figures still come, without these facts
        info["gpu_info_error"] = one_line(f"{exc.__class__.__name__}: {exc}", 300)
    info["CUPY_TF32"] = os.environ.get("CUPY_TF32", "(unset)")
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda
        try:
            if torch.cuda.is_available():
                info["torch_gpu"] = torch.cuda.get_device_name(0)
                info["cudnn"] = torch.backends.cudnn.version()
                info["torch_float32_matmul_precision"] = torch.get_float32_matmul_precision()
                with warnings.catch_warnings():  # newer PyTorch deprecates allow_tf32
                    warnings.simplefilter("ignore")
                    info["torch_cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
                info["torch_cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        except Exception as exc:
            info["torch_cuda_info_error"] = one_line(f"{exc.__class__.__name__}: {exc}", 300)
    return info


class MachineLoad:
    """CPU time used by *other* processes while the block runs, as a fraction of
    the machine's capacity: total busy time from /proc/stat minus our own."""

    def __enter__(self):
        self._busy0, self._own0, self._t0 = self._busy(), self._own(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self._t0
        other = (self._busy() - self._busy0) - (self._own() - self._own0)
        self.other_fraction = max(other, 0.0) / max(elapsed * os.cpu_count(), 1e-9)
        return False

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
                + _running_children_cpu())


def _running_children_cpu():
    """CPU seconds of this process's children that are still running (the isolated
    frameworks' worker processes): RUSAGE_CHILDREN counts only children that ended."""
    total, me = 0, os.getpid()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # field 4, the parent pid (fields[0] is the state)
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------
# each framework in its own process
# ---------------------------------------------------------------------------------
# A framework changes the process it runs in: PyTorch's import alone made minicnn's
# LeNet-5 step 1.5x slower in the same process here (glibc's heap was trimmed and
# regrown every step: 15x more brk calls, each regrowth paid again in page faults),
# and both libraries start thread pools that stay. A user runs one of them, so the
# epoch benchmarks give each framework a process of its own and only pass it
# messages: "train one epoch", "synchronise", "how much device memory".
TRAINER_HOOKS = ("warmup", "sync", "memory_before", "memory_after")


def _serve(conn, module, factory, args, path):
    """The worker process: build the trainer, then run the methods asked for."""
    sys.path[:0] = path
    try:
        import importlib
        trainer = getattr(importlib.import_module(module), factory)(*args)
        conn.send((True, [h for h in TRAINER_HOOKS if getattr(trainer, h) is not None]))
    except BaseException as exc:  # noqa: B902 - reported to the parent, which raises
        conn.send((False, f"{type(exc).__name__}: {exc}"))
        return
    while True:
        request = conn.recv()
        if request is None:
            return
        method, method_args = request
        try:
            conn.send((True, getattr(trainer, method)(*method_args)))
        except BaseException as exc:  # noqa: B902
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class IsolatedTrainer:
    """A benchmark trainer built by ``module.factory(*args)`` in a process of its own.
    It has the trainer's interface (``epoch()`` and, where the trainer has them,
    ``warmup``, ``sync``, ``memory_before``, ``memory_after``); each call is a message
    to the worker and its answer, a fraction of a millisecond next to an epoch.
    ``close()`` ends the worker."""

    def __init__(self, module, factory, *args):
        import multiprocessing
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, no fork
        self._conn, child = context.Pipe()
        path = [os.path.dirname(os.path.abspath(__file__))]
        self._process = context.Process(target=_serve, args=(child, module, factory, args, path),
                                        daemon=True)
        self._process.start()
        child.close()
        hooks = self._answer()
        self.epoch = lambda: self._call("epoch")
        for hook in TRAINER_HOOKS:
            setattr(self, hook, (lambda *a, hook=hook: self._call(hook, *a))
                    if hook in hooks else None)

    def _answer(self):
        try:
            ok, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the worker process ended (exit code "
                               f"{self._process.exitcode})") from None
        if not ok:
            raise RuntimeError(value)
        return value

    def _call(self, method, *args):
        self._conn.send((method, args))
        return self._answer()

    def close(self):
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def cpu_facts():
    """``(model name, ISA)`` of this CPU, the ISA being the widest vector extension
    NumPy's BLAS and PyTorch's oneDNN can use: "AVX2", "AVX-512" or "AVX-512+AMX"."""
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "?":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return model, isa + ("+AMX" if "amx_tile" in flags else "")


def machine_kind(model=None, isa=None):
    """A folder name for this kind of machine (or the one described), e.g.
    "amd-epyc-avx2" or "intel-xeon-avx512-amx": figures of different kinds are never
    mixed in one file."""
    if model is None or isa is None:
        model, isa = cpu_facts()
    words = [w for w in re.findall(r"[a-z0-9]+", re.sub(r"\((r|tm)\)", " ", model.lower()))
             if w not in ("cpu", "processor")]
    name = "-".join(words[:2]) or "cpu"
    return f"{name}-{isa.lower().replace('-512', '512').replace('+', '-')}"


def results_dir(directory=None):
    """Where results go: ``directory`` if given, else benchmarks/results/<machine kind>/."""
    return directory or os.path.join(RESULTS, machine_kind())


def environment(gemm_size=2048):
    """The facts a reader needs to compare figures: CPU model, ISA, the float32 GEMM
    peak measured now (the honest gauge on a shared machine), threads, BLAS settings."""
    model, isa = cpu_facts()
    info = {"cpu": model, "isa": isa, "machine_kind": machine_kind(),
            "gemm_peak_gflops": round(gemm_peak(gemm_size), 1),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)")}
    try:
        import numba
        info["numba"] = numba.__version__
    except ImportError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def print_environment(info):
    print("environment: " + ", ".join(f"{k}={v}" for k, v in info.items()))


def results_name(base, gpu):
    """GPU runs write ``<base>_gpu.json``/``.png``, beside (not over) the CPU figures."""
    return f"{base}_gpu" if gpu else base


def add_backend_options(parser):
    """--backends and --cudnn-benchmark, the same in every script."""
    parser.add_argument("--backends", nargs="+", default=None, metavar="BACKEND",
                        help="minicnn backends to measure, e.g. numba cupy (default: the "
                             "CPU backends that run here)")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="with a GPU backend, also time PyTorch with "
                             "torch.backends.cudnn.benchmark=True")


def print_gpu_peer_note():
    """What a GPU run's ratios mean, printed before them."""
    print("GPU: the comparison that matters is minicnn-cupy against PyTorch on the same "
          "GPU (torch-cuda), not against PyTorch on the CPU")


def print_target(name, ratio, what="images/s over torch-cuda's"):
    """The line that says whether the GPU target (half of PyTorch's throughput) is met."""
    print(f"{name} {what}: {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'not met'})")


def report_failures(failures, results=None):
    """Print each failed framework in one line (and keep them in ``results``)."""
    if failures and results is not None:
        results["failures"] = failures
    for name, why in failures.items():
        print(f"FAILED: {name}: {one_line(why)}")


def writes_files(args):
    """Whether this run writes result files: not a --smoke run without --out."""
    if args.smoke and not args.out:
        print("smoke run: no result files written (--out DIR writes them)")
        return False
    return True


def add_output_options(parser):
    """--out and --smoke, the same in every script."""
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the JSON and PNG results (default: "
                             "benchmarks/results; a --smoke run writes only with --out)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny configuration that only checks that every path runs "
                             "(seconds); its figures mean nothing")


def torch_or_none(threads=None):
    """PyTorch if installed (``pip install torch==2.13.0``), set to ``threads`` threads."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: its columns are skipped "
              "(pip install torch==2.13.0 for the peer figures)")
        return None
    torch.set_num_threads(threads or os.cpu_count())
    return torch


def save_results(name, results, args):
    """Mark a ``--smoke`` run as such and write its JSON where ``writes_files`` allows."""
    if args.smoke:
        results["smoke"] = True
    if writes_files(args):
        write_results(name, results, args.out)


def write_results(name, payload, directory=None):
    directory = results_dir(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    print(f"results written to {path}")
    return path


def bar_plot(name, title, groups, series, ylabel, directory=None):
    """Grouped bars: ``series`` maps a label to one value (or None) per group."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4.5))
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + i * width for g, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=label)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    directory = results_dir(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.png")
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")
    return path
