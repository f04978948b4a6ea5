"""Paired (round-robin) timing: variants run in turn, so a load change on a shared machine hits all of them alike.

    figures = alternate({"old": run_old, "new": run_new}, rounds=7)   # {"old": (wall s, CPU s), ...}

Standard library only (benchmarks import it before torch loads OpenMP). Ratios between variants of one call hold on a
busy machine; their absolute times do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
