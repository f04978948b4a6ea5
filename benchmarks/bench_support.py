"""What the benchmark scripts share: the serving process's environment, and paired (round-robin) timing.

    import bench_support
    bench_support.use_serving_environment()   # first, before torch is imported: it may re-execute the script
    figures = bench_support.alternate({"old": run_old, "new": run_new}, rounds=7)

Standard library only, so a script can call `use_serving_environment` before anything loads OpenMP or malloc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models.timing, from any working directory

# standard library only; the precision chooser (models.precision) times its paths with it too
from models.timing import alternate

__all__ = ["MALLOC_ENV", "alternate", "use_serving_environment"]

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
