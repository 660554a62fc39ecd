"""What every benchmark script shares: medians of repeated timings, the machine's
float32 GEMM peak, how busy the rest of the machine was, the BLAS environment, and
writing results as JSON and a PNG plot under benchmarks/results/."""
import json
import os
import platform
import resource
import statistics
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def median_time(fn, repeats=5, warmup=1):
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# After a call, OpenBLAS's and OpenMP's worker threads keep spinning for a while
# (OpenBLAS up to ~0.1 s) before they sleep; a different library called in that
# window shares the cores with them. Measured here: PyTorch's 3x3 convolution took
# 146 ms right after a minicnn call and 85 ms after this pause.
SETTLE_SECONDS = 0.3


def settle():
    """Let the previous library's worker threads go to sleep before timing another."""
    time.sleep(SETTLE_SECONDS)


def interleaved_medians(fns, repeats=5, warmup=1, repeats_for=None):
    """Median wall time (seconds) of each callable in ``fns`` (name -> fn), timed in
    turns (a, b, c, a, b, c, ...) so that a change in the machine's load during the
    run hits every implementation alike, with a pause (``settle``) before each call.
    ``repeats_for`` may lower the count for some (slow) names."""
    repeats_for = repeats_for or {}
    for fn in fns.values():
        for _ in range(warmup):
            settle()
            fn()
    times = {name: [] for name in fns}
    for r in range(max(repeats_for.get(name, repeats) for name in fns)):
        for name, fn in fns.items():
            if r < repeats_for.get(name, repeats):
                settle()
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def gemm_peak(size=2048, repeats=7):
    """float32 GFLOP/s of NumPy's BLAS on a square product: the yardstick for
    'fraction of peak'."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    return 2 * size ** 3 / median_time(lambda: a @ b, repeats) / 1e9


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
        return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def environment():
    """The facts a reader needs to compare figures: CPU, threads, BLAS settings."""
    info = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)")}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f
                                if line.startswith("model name")), "?")
    except OSError:
        pass
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


def write_results(name, payload):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    print(f"results written to {path}")
    return path


def bar_plot(name, title, groups, series, ylabel):
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
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.png")
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")
    return path
