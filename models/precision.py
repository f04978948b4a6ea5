"""python -m models.precision MODEL [--photos 8] [--rounds 5] [--batches 1,8] [--paths fp32,bf16,...]

Measure how fast each precision path (models.precision_paths: fp32, channels_last, folded_bn, bf16, compile, int8)
runs MODEL's network on this machine and what it does to the colours, pick the fastest whose CIEDE2000 on the
validation photos changes by at most 0.05 from fp32's, and record the choice (models.precision_cache) for
`--precision auto`. Then, in code:

    description = apply_precision(colorizer, "auto")   # the recorded choice, or fp32 when never measured here

Why `auto` does not measure by itself: measuring takes from tens of seconds (the bundled default) to minutes (a
paper-size pix2pix on a busy CPU), which would make a first run slow by surprise. Unmeasured, `auto` is plain fp32,
exactly the trained network. Timings are paired (paths run in turn, `models.timing.alternate`), so their ratios hold
on a busy machine; a path must take at most 0.97x fp32's time to be chosen (smaller gains are within timing noise).
`compile` is measured only when asked (`--paths ...,compile`) and never chosen: it compiles again for every new
input shape, which costs minutes on a small CPU.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import torch
from torch import nn

from models.flags import FlagParser
from models.pipeline import Colorizer, NetworkColorizer
from models.precision_cache import cache_dir, read_choice, record_choice
from models.precision_options import check_precision
from models.precision_paths import PATHS, REFERENCE, PrecisionError, prepare_network, unavailable_reason
from models.precision_quality import (
    calibration_photos,
    colour_distance,
    l_norm_of,
    score_network,
    validation_photos,
)
from models.timing import alternate

QUALITY_BOUND = 0.05  # largest |change| in mean CIEDE2000 to the photos a chosen path may cause
MIN_GAIN = 0.97  # a path replaces fp32 only at <= 0.97x its time: paired medians still wobble by a few per cent
NEVER_AUTO = {"compile": "never chosen automatically: it compiles again for every new input shape"}
DEFAULT_PATHS = tuple(path for path in PATHS if path != "compile")


def pick(rows: dict[str, dict], bound: float = QUALITY_BOUND, min_gain: float = MIN_GAIN) -> tuple[str, str]:
    """The fastest eligible path of measured `rows` ({path: {"ratio": time / fp32 time, "ciede_change": ...}})
    and the reason, in one sentence. A path is eligible when it ran, its CIEDE2000 changed by at most `bound`,
    and it is not in NEVER_AUTO; it must also reach `min_gain`, else fp32 stays."""
    eligible = {
        path: row
        for path, row in rows.items()
        if path != REFERENCE
        and path not in NEVER_AUTO
        and row.get("ratio") is not None
        and row.get("ciede_change") is not None
        and math.isfinite(row["ciede_change"])
        and abs(row["ciede_change"]) <= bound
    }
    rejected = [
        f"{path} (CIEDE2000 {row['ciede_change']:+.3f})"
        for path, row in rows.items()
        if row.get("ciede_change") is not None and not abs(row["ciede_change"]) <= bound
    ]
    note = f"; too inaccurate: {', '.join(rejected)}" if rejected else ""
    if not eligible:
        return REFERENCE, f"no other path ran within {bound} CIEDE2000 of fp32{note}"
    best = min(eligible, key=lambda path: eligible[path]["ratio"])
    ratio, change = eligible[best]["ratio"], eligible[best]["ciede_change"]
    if ratio > min_gain:
        return (
            REFERENCE,
            f"the fastest accurate path, {best}, took {ratio:.2f}x fp32's time (needs <= {min_gain}){note}",
        )
    return best, f"fastest within {bound} CIEDE2000: {ratio:.2f}x fp32's time, CIEDE2000 {change:+.3f}{note}"


def measure_paths(
    model: nn.Module,
    *,
    paths: Sequence[str] = DEFAULT_PATHS,
    photos: list | None = None,
    photo_source: str = "",
    side: int | None = None,
    batches: Sequence[int] = (1, 8),
    rounds: int = 5,
    log=print,
) -> dict:
    """Quality and paired speed of each path for `model` at working size `side` (its native size if None):
    {"rows": {path: {...}}, "photos": source, "side": side}. Unavailable paths get a "skipped" reason."""
    model = model.eval()
    side = side or int(getattr(model, "native_working_size", None) or 256)
    if photos is None:
        photos, photo_source = validation_photos()
    rows: dict[str, dict] = {}
    prepared: dict[str, nn.Module] = {}
    reference = score_network(model, photos, side)
    for path in dict.fromkeys([REFERENCE, *paths]):
        reason = unavailable_reason(model, path)
        if reason is not None:
            rows[path] = {"skipped": reason}
            log(f"  {path}: skipped ({reason})")
            continue
        started = time.perf_counter()
        try:
            calibration = calibration_photos(side) if path == "int8" else None
            network = (
                model if path == REFERENCE else prepare_network(copy.deepcopy(model), path, calibration=calibration)
            )
            prepare_s = time.perf_counter() - started
            started = time.perf_counter()
            scores = reference if path == REFERENCE else score_network(network, photos, side)
        except Exception as error:  # an optional path that fails here is reported, not fatal
            rows[path] = {"skipped": f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"}
            log(f"  {path}: {rows[path]['skipped']}")
            continue
        first_s = time.perf_counter() - started  # includes compile's first compilation
        rows[path] = {
            "ciede2000": scores["ciede2000"],
            "ciede_change": scores["ciede2000"] - reference["ciede2000"],
            "ab_auc": scores["ab_auc"],
            "ab_auc_change": scores["ab_auc"] - reference["ab_auc"],
            "distance_to_fp32": colour_distance(scores["lab"], reference["lab"]),
            "prepare_s": prepare_s + (first_s if path == "compile" else 0.0),
        }
        prepared[path] = network
    inputs = [l_norm_of(photo, side) for photo in photos]
    for batch in batches:
        batch_input = torch.cat([inputs[i % len(inputs)] for i in range(batch)])

        def runner(network: nn.Module, x: torch.Tensor = batch_input) -> Callable[[], None]:
            def forward() -> None:
                with torch.inference_mode():
                    network(x)

            return forward

        variants = {path: runner(network) for path, network in prepared.items()}
        for path, run in variants.items():  # compile's new shape compiles here, outside the timed rounds
            started = time.perf_counter()
            run()
            if path == "compile":
                rows[path]["prepare_s"] += time.perf_counter() - started
        timings = alternate(variants, rounds)
        for path, (wall, _cpu) in timings.items():
            rows[path][f"ms_per_image_b{batch}"] = 1000 * wall / batch
            rows[path][f"ratio_b{batch}"] = wall / timings[REFERENCE][0]
    for row in rows.values():
        ratios = [row[f"ratio_b{batch}"] for batch in batches if f"ratio_b{batch}" in row]
        row["ratio"] = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None
    return {"rows": rows, "photos": photo_source, "side": side, "batches": list(batches), "rounds": rounds}


def choose_precision(model: nn.Module, *, record: bool = True, **measure_options) -> dict:
    """Measure `model`'s paths (see measure_paths), pick one (see pick), and record it for this machine."""
    measured = measure_paths(model, **measure_options)
    path, reason = pick(measured["rows"])
    entry = {"path": path, "reason": reason, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    entry.update(measured)
    if record:
        record_choice(model, entry)
    return entry


def resolve_precision(model: nn.Module, precision: str) -> tuple[str, str]:
    """The path `precision` means for `model` here, and why: `auto` is the recorded choice, else fp32."""
    precision = check_precision(precision, what="--precision")
    if precision != "auto":
        return precision, "asked for"
    entry = read_choice(model)
    if entry is None:
        return REFERENCE, "auto: not measured on this machine (python -m models.precision MODEL records a choice)"
    reason = unavailable_reason(model, entry["path"])
    if reason is not None:
        return REFERENCE, f"auto: the recorded {entry['path']} cannot run now ({reason})"
    return entry["path"], f"auto: measured on this machine, {entry.get('reason', '')}"


def apply_precision(colorizer: Colorizer, precision: str = "auto") -> str:
    """Prepare `colorizer`'s network for `precision` (auto, fp32, bf16, int8) in place; returns one line saying
    which path runs and why. Raises PrecisionError (a ValueError) with a sentence when the path cannot run here."""
    if not isinstance(colorizer, NetworkColorizer):
        if check_precision(precision, what="--precision") in ("auto", "fp32"):
            return f"{colorizer.name}: fp32 (precision paths apply to single-network colorizers only)"
        raise PrecisionError(
            f"--precision {precision} applies to single-network colorizers, and {colorizer.name} is not one; "
            "use --precision auto or fp32."
        )
    model = colorizer.model
    if torch.device(colorizer.device).type != "cpu":
        if check_precision(precision, what="--precision") in ("auto", "fp32"):
            return (
                f"{colorizer.name}: fp32 (the precision paths are measured for CPUs; this runs on {colorizer.device})"
            )
        raise PrecisionError(f"--precision {precision} is a CPU path; use --device cpu, or --precision fp32.")
    path, why = resolve_precision(model, precision)
    if path != REFERENCE:
        side = int(model.native_working_size or 256)
        prepare_network(model, path, calibration=calibration_photos(side) if path == "int8" else None)
    return f"{colorizer.name}: {path} ({why})"


def format_rows(measured: dict) -> str:
    batches = measured["batches"]
    head = " | ".join(f"batch {b} ms/img (x fp32)" for b in batches)
    lines = [
        f"| path | {head} | CIEDE2000 change | ab-AuC change | ΔE to fp32 | prepare s |",
        "|---" * (5 + len(batches)) + "|",
    ]
    for path, row in measured["rows"].items():
        if "skipped" in row:
            lines.append(f"| {path} | skipped: {row['skipped']} |")
            continue
        speed = " | ".join(f"{row[f'ms_per_image_b{b}']:.1f} ({row[f'ratio_b{b}']:.2f}x)" for b in batches)
        lines.append(
            f"| {path} | {speed} | {row['ciede_change']:+.3f} | {row['ab_auc_change']:+.4f} "
            f"| {row['distance_to_fp32']:.3f} | {row['prepare_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = FlagParser(
        prog="python -m models.precision",
        description="Measure each precision path of a colorizer on this machine (speed, paired; colours on validation "
        "photos) and record the fastest one within 0.05 CIEDE2000 of fp32 for --precision auto.",
    )
    parser.add_argument("model", help="a saved colorizer folder (e.g. weights/colour_l1) or a Hub id")
    parser.add_argument("--photos", type=int, default=8, help="validation photos scored (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="paired timing rounds per batch size (default 5)")
    parser.add_argument("--batches", default="1,8", help="batch sizes timed, comma-separated (default 1,8)")
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS), help=f"paths measured, of {', '.join(PATHS)}")
    parser.add_argument("--no_record", action="store_true", help="measure and print only; keep the cache as it is")
    args = parser.parse_args(argv)
    from models.hub import load_model

    try:
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        unknown = [p for p in paths if p not in PATHS]
        if unknown:
            raise ValueError(f"--paths {', '.join(unknown)} unknown; choose from {', '.join(PATHS)}.")
        batches = [int(b) for b in args.batches.split(",")]
        if args.photos < 1 or args.rounds < 1 or min(batches) < 1:
            raise ValueError("--photos, --rounds and every --batches entry must be at least 1.")
        model = load_model(args.model)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    photos, source = validation_photos(args.photos)
    print(f"{args.model}: measuring {', '.join(paths)} on {source}, {torch.get_num_threads()} thread(s)")
    entry = choose_precision(
        model,
        record=not args.no_record,
        paths=paths,
        photos=photos,
        photo_source=source,
        batches=batches,
        rounds=args.rounds,
    )
    print(format_rows(entry))
    where = "not recorded (--no_record)" if args.no_record else f"recorded in {cache_dir()}"
    print(f"chosen: {entry['path']} ({entry['reason']}); {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
