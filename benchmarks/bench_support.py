"""What the benchmark scripts share: the serving process's environment, and paired (round-robin) timing.

    import bench_support
    bench_support.use_serving_environment()   # first, before torch is imported: it may re-execute the script
    figures = bench_support.alternate({"old": run_old, "new": run_new}, rounds=7)

Standard library only, so a script can call `use_serving_environment` before anything loads OpenMP or malloc.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

# The Makefile's malloc settings (../shared/ARCHITECTURE.md: large tensors are reused instead of returned to the OS).
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "10000000000",
    "MALLOC_TOP_PAD_": "1073741824",
}


def use_serving_environment() -> None:
    """Re-execute this script with the malloc settings and OMP_WAIT_POLICY=PASSIVE (as `python -m models.colorize`
    sets it; pass OMP_WAIT_POLICY=ACTIVE to compare) unless set (both must be set before the process starts)."""
    if any(os.environ.get(key) != value for key, value in MALLOC_ENV.items()) or "OMP_WAIT_POLICY" not in os.environ:
        environment = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, **MALLOC_ENV}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)


def alternate(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall s, CPU s) of each variant, run round-robin so load changes hit all of them alike; the first
    round warms up and is dropped."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds + 1):
        for name, run in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: (statistics.median(t[0] for t in rows[1:]), statistics.median(t[1] for t in rows[1:]))
        for name, rows in times.items()
    }
