"""Shared helpers of the benchmarks (not a benchmark itself: ``make bench`` skips ``_*.py``).

Timing protocol (every benchmark):

- one untimed warm-up call of each side compiles it; its extra time over the median is
  reported separately as ``compile_s``;
- then project and baseline calls alternate (p, b, p, b, ...), so both see the same load;
- medians of wall time (``*_median_s``, the headline) and of process CPU time
  (``*_median_cpu_s``: less sensitive to other jobs on a shared machine) are recorded;
- ``ratio = baseline_median_s / project_median_s`` (> 1: the project is faster);
- the 1/5/15-minute load averages before and after the run are recorded with the machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

import tunable_solids  # noqa: F401  (float64)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks"

# Quick mode (``BENCH_QUICK=1``): fewer repeats / sizes, for a smoke check of the scripts.
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def machine() -> dict:
    """CPU, core count, JAX set-up and the current load."""
    cpu = platform.processor() or ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.read("jax_enable_x64")),
        "loadavg": list(os.getloadavg()),
    }


def block(x):
    return jax.block_until_ready(x)


class Timer:
    """Wall and CPU time of one call (results blocked on)."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, fn: Callable, *args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        out = block(fn(*args, **kwargs))
        self.wall.append(time.perf_counter() - w)
        self.cpu.append(time.process_time() - c)
        return out


def interleaved(
    project: Callable[[int], object],
    baseline: Callable[[int], object],
    repeats: int,
    warmup_arg: int = -1,
) -> dict:
    """Time ``project(k)`` and ``baseline(k)`` for ``k = 0..repeats-1``, alternating.

    ``k`` selects the instance (e.g. the seed); both sides get the same ``k``. The call
    with ``warmup_arg`` compiles each side first. Returns timings and outputs per side.
    """
    out = {}
    for name, fn in (("project", project), ("baseline", baseline)):
        t = Timer()
        t(fn, warmup_arg)
        out[name] = {"first_wall": t.wall[0], "timer": Timer(), "results": []}
    for k in range(repeats):
        for name, fn in (("project", project), ("baseline", baseline)):
            out[name]["results"].append(out[name]["timer"](fn, k))
    return out


def interleaved_many(sides: dict[str, Callable[[int], object]], repeats: int) -> dict:
    """:func:`interleaved` for any number of named sides (warm-up call with ``-1`` each,
    then ``k = 0..repeats-1`` round-robin)."""
    out = {}
    for name, fn in sides.items():
        t = Timer()
        t(fn, -1)
        out[name] = {"first_wall": t.wall[0], "timer": Timer(), "results": []}
    for k in range(repeats):
        for name, fn in sides.items():
            out[name]["results"].append(out[name]["timer"](fn, k))
    return out


def summary(times: dict) -> dict:
    """Medians and the compile overhead of one side of :func:`interleaved`."""
    t = times["timer"]
    med = statistics.median(t.wall)
    return {
        "median_s": med,
        "median_cpu_s": statistics.median(t.cpu),
        "min_s": min(t.wall),
        "all_s": t.wall,
        "compile_s": max(times["first_wall"] - med, 0.0),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux: ru_maxrss is in kB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


def write(
    name: str,
    baseline: str,
    project_median_s: float,
    baseline_median_s: float,
    repeats: int,
    accuracy: dict,
    load_before: list[float],
    **extra,
) -> dict:
    """Write ``results/benchmarks/<name>.json`` and print the ratio."""
    OUT.mkdir(parents=True, exist_ok=True)
    ratio = baseline_median_s / project_median_s
    m = machine()
    m["loadavg_before"] = load_before
    m["loadavg_after"] = m.pop("loadavg")
    record = {
        "name": name,
        "baseline": baseline,
        "project_median_s": project_median_s,
        "baseline_median_s": baseline_median_s,
        "ratio": ratio,
        "repeats": repeats,
        "accuracy": accuracy,
        "machine": m,
        **extra,
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(_plain(record), indent=2) + "\n")
    print(
        f"[{name}] ratio (baseline / project median wall time) = {ratio:.2f}  "
        f"(project {project_median_s:.4g} s, baseline {baseline_median_s:.4g} s, "
        f"{repeats} repeats, load {load_before[0]:.1f} -> {m['loadavg_after'][0]:.1f})"
    )
    print(f"[{name}] wrote {path.relative_to(ROOT)}")
    return record


def _plain(x):
    """JSON-safe copy (numpy scalars and arrays to Python)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, jax.Array):
        return _plain(np.asarray(x))
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x
