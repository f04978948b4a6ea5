"""python benchmarks/bench_peak.py [--clock_mhz MHZ] [--repeats 3] [--quick]

This CPU's peak FLOP/s in fp32 and in bf16 (bf16 only where the CPU has bfloat16 instructions and oneDNN uses them,
models.precision_paths.cpu_supports_bf16), two ways, on torch.get_num_threads() threads:

- theoretical (models.cpu_peak): cores x clock x FLOP/cycle/core of the core design, with where each factor came
  from; "unavailable" and why for a CPU the table does not know;
- measured: the best sustained rate over a sweep of GEMMs with torch (squares 512..4096, and the im2col shapes of
  pix2pix_unet256's convolutions at 256 px, batch 1 and 8: tall-skinny and short-wide) and two convolutions run
  directly (oneDNN, NHWC). Each shape: one warm-up call, then --repeats timings of enough calls to fill 0.25 s;
  the best timing counts (the least disturbed).

Every row shows its fraction of both peaks. A rate above the theoretical peak is printed as a warning (the clock or
the table is wrong, typically a VM's nominal 'cpu MHz' below the boost clock; pass --clock_mhz), never as a
fraction above 1. benchmarks/bench_precision.py divides the models' rates by the same two peaks.

Takes about 30-40 s on 2 quiet cores (--quick: about 10 s); on a busy machine it is slower and the measured peak
lower. Re-executes itself with the serving malloc settings (bench_support).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bench_support

bench_support.use_serving_environment()  # before torch loads OpenMP and malloc settles

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from models.cpu_peak import TheoreticalPeak, over_peak_warning, theoretical_peak  # noqa: E402
from models.flags import FlagParser  # noqa: E402
from models.precision_paths import cpu_description, cpu_supports_bf16  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SQUARES = (512, 1024, 2048, 4096)
# pix2pix_unet256's heaviest convolutions at 256 px as im2col GEMMs (M output pixels x K = C_in*4*4, N = C_out; a
# transposed convolution: M input pixels x K = C_in, N = C_out*4*4), batch 1, and the first two at batch 8
UNET_GEMMS = (
    ("enc 64->128 @128^2, b1", 4096, 1024, 128),
    ("enc 128->256 @64^2, b1", 1024, 2048, 256),
    ("enc 256->512 @32^2, b1", 256, 4096, 512),
    ("dec 1024->512 @16^2, b1", 256, 1024, 8192),
    ("dec 256->128 @64^2, b1", 4096, 256, 1024),
    ("enc 64->128 @128^2, b8", 8 * 4096, 1024, 128),
    ("enc 128->256 @64^2, b8", 8 * 1024, 2048, 256),
)
# (label, batch, C_in, side, C_out, kernel, stride): run as torch convolutions, NHWC (what the precision paths use)
CONVS = (
    ("conv 4x4/2 128->256 @64^2, b8", 8, 128, 64, 256, 4, 2),
    ("conv 3x3 64->64 @128^2, b4", 4, 64, 128, 64, 3, 1),
)
MIN_TIME_S = 0.25  # one timing runs the operation this long at least, so that timer and launch costs vanish


@dataclass(frozen=True)
class Row:
    label: str
    flop: float  # per call
    rate: float  # best FLOP/s


def gemm_case(m: int, k: int, n: int, dtype: torch.dtype) -> tuple[Callable[[], object], float]:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    return (lambda: torch.matmul(a, b)), 2.0 * m * k * n


def conv_case(batch: int, c_in: int, side: int, c_out: int, kernel: int, stride: int, dtype: torch.dtype):
    x = torch.randn(batch, c_in, side, side).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c_out, c_in, kernel, kernel).to(dtype).contiguous(memory_format=torch.channels_last)
    padding = (kernel - stride) // 2 if stride > 1 else kernel // 2
    out_side = (side + 2 * padding - kernel) // stride + 1
    flop = 2.0 * batch * c_out * out_side * out_side * c_in * kernel * kernel
    return (lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)), flop


def best_rate(run: Callable[[], object], flop: float, repeats: int) -> float:
    """The best of `repeats` timings (each of enough calls to fill MIN_TIME_S), in FLOP/s, after one warm-up."""
    with torch.inference_mode():
        started = time.perf_counter()
        run()  # warm-up: oneDNN picks and caches its kernel for this shape here
        calls = max(1, math.ceil(MIN_TIME_S / max(time.perf_counter() - started, 1e-6)))
        best = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(calls):
                run()
            best = min(best, (time.perf_counter() - started) / calls)
    return flop / best


def precisions_here() -> list[str]:
    """fp32, and bf16 where the CPU computes it in hardware (detected, never assumed)."""
    return ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]


def measure(precision: str, *, repeats: int = 3, quick: bool = False) -> list[Row]:
    """The sweep for one precision: a Row per shape, in sweep order."""
    dtype = DTYPES[precision]
    cases = [(f"square {s}", *gemm_case(s, s, s, dtype)) for s in (SQUARES[1:3] if quick else SQUARES)]
    gemms = UNET_GEMMS[:3] if quick else UNET_GEMMS
    cases += [(label, *gemm_case(m, k, n, dtype)) for label, m, k, n in gemms]
    cases += [(c[0], *conv_case(*c[1:], dtype)) for c in (CONVS[:1] if quick else CONVS)]
    rows = []
    for label, run, flop in cases:
        rows.append(Row(label, flop, best_rate(run, flop, repeats)))
    return rows


def measured_peaks(*, repeats: int = 3, quick: bool = False) -> dict[str, Row]:
    """The measured peak per precision this CPU runs natively: the sweep's fastest row."""
    return {p: max(measure(p, repeats=repeats, quick=quick), key=lambda row: row.rate) for p in precisions_here()}


def fraction(rate: float, peak: float | None, what: str, warnings: list[str], clock_mhz: float | None) -> str:
    """'0.62' of `peak`, or a marker (and a collected warning) where the rate beats a theoretical peak."""
    if peak is None:
        return "n/a"
    warning = over_peak_warning(rate, peak, what, clock_mhz)
    if warning is not None:
        warnings.append(warning)
        return f"ABOVE PEAK ({rate / peak:.2f}x)"
    return f"{rate / peak:.2f}"


def report(theory: TheoreticalPeak, sweeps: dict[str, list[Row]]) -> list[str]:
    lines, warnings = [], []
    for precision, rows in sweeps.items():
        best = max(rows, key=lambda row: row.rate)
        peak = theory.of(precision)
        lines += [
            f"\n## {precision}: measured peak {best.rate / 1e9:.0f} GFLOP/s ({best.label}); theoretical "
            + (f"{peak / 1e9:.0f} GFLOP/s" if peak is not None else "unavailable"),
            "| shape | GFLOP/call | GFLOP/s | of theoretical | of measured peak |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in rows:  # one warning per precision, the fastest shape's (it names the clock that would fit)
            of_theory = fraction(row.rate, peak, f"{precision} {row.label}", [], theory.clock_mhz)
            lines.append(
                f"| {row.label} | {row.flop / 1e9:.2f} | {row.rate / 1e9:.1f} | {of_theory} "
                f"| {row.rate / best.rate:.2f} |"
            )
        if peak is not None and best.rate <= peak:
            lines.append(f"measured peak / theoretical peak: {best.rate / peak:.2f}")
        fraction(best.rate, peak, f"{precision}'s fastest shape, {best.label},", warnings, theory.clock_mhz)
    return [*lines, "", *warnings]


def main(argv: list[str] | None = None) -> None:
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock_mhz", type=float, help="the clock for the theoretical peak (default: as detected)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per shape; the best counts")
    parser.add_argument("--quick", action="store_true", help="a smaller sweep (2 squares, 3 U-Net GEMMs, 1 conv)")
    args = parser.parse_args(argv)
    if args.clock_mhz is not None and args.clock_mhz <= 0:
        parser.error(f"--clock_mhz must be a positive clock in MHz, got {args.clock_mhz:g}.")
    started = time.perf_counter()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread(s); {cpu_description()}")
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start (a busy CPU lowers the sweep)"
    )
    theory = theoretical_peak(threads, clock_mhz=args.clock_mhz)
    print("\n".join(theory.describe()))
    if not cpu_supports_bf16():
        print(
            "bf16: not measured: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), so torch emulates it"
        )
    sweeps = {p: measure(p, repeats=args.repeats, quick=args.quick) for p in precisions_here()}
    print("\n".join(report(theory, sweeps)))
    print(f"{time.perf_counter() - started:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
