"""The hint curve: how much better a hint model colours a photo as a simulated user gives it more colour points
(``judge.evaluate --hints 0,1,2,5,10,20``).

    curve = run_hint_curve(colorizers, images, counts=(0, 1, 2, 5, 10, 20), seed=0)
    lines = hint_curve_lines(curve)      # markdown for report.md
    hint_curve_chart(curve)              # matplotlib Figure: CIEDE2000 against the number of hints

For every photo the simulated user (`models.hint_sampling.simulated_hints`, the sampler hint models are trained
with) draws the largest count of points once, from a generator seeded by (seed, photo index); a count of n gives
the first n of them, so every model sees the same hints and 10 hints are the 5 hints plus five more, as a user who
keeps clicking. Each hint is a patch of the ground truth, coloured with its mean true Lab. Every colorizer runs
through the contract (`colorize(photo, hints=...)`) at the working size of the main table (each model's native size
by default), and is scored on CIEDE2000, ab AuC and |Δ colourfulness| at each count, plus the hint error: the
CIEDE2000 between the output's mean colour over each hinted patch and the hint's colour, averaged over the patches.
A colorizer that does not take hints is scored at 0 hints only (never fed hints), as a reference.

The hint bars, judged per hint model on the report's split: with 10 hints, CIEDE2000 at least 30 % lower than with
0 hints, and the colour at the hinted points within 5 CIEDE2000 of the hint (the mean hint error at 10 hints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from tqdm.auto import tqdm

from judge.metrics import image_metrics
from models.colorizer import DEFAULT_WORKING_SIZE
from models.hint_card import BAR_COUNT, CIEDE_REDUCTION_BAR, HINT_ERROR_BAR, verdict_lines
from models.hint_sampling import EDGE_SHARE, SimulatedHint, simulated_hints
from models.hints import MAX_HINTS
from models.options import WorkingSize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_HINT_COUNTS = (0, 1, 2, 5, 10, 20)
HINT_METRICS = ("ciede2000", "ab_auc", "colourfulness_delta")
HINT_ERROR = "hint_error"  # mean CIEDE2000 between the output over a hinted patch and the hint's colour
HINT_WITHIN = "hints_within_5"  # share of hinted patches whose output is within HINT_ERROR_BAR of the hint
_SEED_STRIDE = 1_000_003  # photo generators: seed * stride + photo index, so no two (seed, photo) pairs collide


def parse_hint_counts(text: str) -> list[int]:
    """`"0,1,2,5,10,20"` -> [0, 1, 2, 5, 10, 20] (sorted, each once); a ValueError sentence for anything else."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        counts = [int(part) for part in parts]
    except ValueError:
        counts = []
    if not counts:
        raise ValueError(f"expected numbers of hints separated by commas (e.g. 0,1,2,5,10,20), got {text!r}")
    wrong = [count for count in counts if not 0 <= count <= MAX_HINTS]
    if wrong:
        raise ValueError(
            f"hint counts must be whole numbers from 0 to {MAX_HINTS} (a photo takes at most "
            f"{MAX_HINTS} hints), got {', '.join(map(str, wrong))}"
        )
    return sorted(set(counts))


def hint_grid(colorizers: Sequence[Any], working_size: WorkingSize = None) -> int:
    """The side of the square grid the simulated user draws its points on: the working size the hint models run
    at (the first hint model's, so its patches are exactly the 1x1 to 7x7 it was trained with), the same for all."""
    hinted = [c for c in colorizers if c.takes_hints]
    if hinted:
        return hinted[0].working_side(working_size)
    return int(working_size) if isinstance(working_size, int) else DEFAULT_WORKING_SIZE


def draw_simulated_hints(images: Any, *, count: int, seed: int, grid: tuple[int, int]) -> list[list[SimulatedHint]]:
    """`count` simulated hints for each ground-truth photo of `images` (`judge.evaluate.EvalImages`)."""
    drawn = []
    for index, rgb in enumerate(images.rgb):
        generator = torch.Generator().manual_seed(seed * _SEED_STRIDE + index)
        drawn.append(simulated_hints(rgb, count, generator, grid=grid))
    return drawn


def hint_errors(pred_rgb: np.ndarray, hints: Sequence[SimulatedHint]) -> list[float]:
    """CIEDE2000 between the output's mean Lab over each hint's patch and the hint's colour."""
    if not hints:
        return []
    lab = rgb2lab(np.asarray(pred_rgb, dtype=np.float64) / 255.0)
    means = np.array([lab[h.rows, h.columns].reshape(-1, 3).mean(axis=0) for h in hints])
    wanted = np.array([h.hint.lab for h in hints], dtype=np.float64)
    return [float(e) for e in deltaE_ciede2000(wanted, means, channel_axis=-1)]


def run_hint_curve(
    colorizers: Sequence[Any],
    images: Any,
    *,
    counts: Sequence[int] = DEFAULT_HINT_COUNTS,
    seed: int = 0,
    working_size: WorkingSize = None,
    keep_aspect: bool = False,
    flip_average: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """{"counts", "seed", "grid", "edge_share", "models": {name: {"takes_hints", "counts": {n: {metric: mean}}}},
    "bars": {name: verdicts}} for `colorizers` (`models.colorizer.Colorizer`s) on `images`."""
    counts = sorted({int(n) for n in counts})
    side = hint_grid(colorizers, working_size)
    drawn = draw_simulated_hints(images, count=max(counts), seed=seed, grid=(side, side))
    models: dict[str, dict[str, Any]] = {}
    jobs = sum(len(counts) if c.takes_hints else int(0 in counts) for c in colorizers) * len(images.rgb)
    bar = tqdm(total=jobs, desc="hint curve", unit="img", disable=progress is False)
    for colorizer in colorizers:
        by_count: dict[int, dict[str, float]] = {}
        for count in counts if colorizer.takes_hints else [n for n in counts if n == 0]:
            rows, errors = [], []
            for target, hints in zip(images.rgb, drawn, strict=True):
                torch.manual_seed(seed)  # a sampler draws the same colouring on every run
                output = colorizer.colorize(
                    Image.fromarray(target),
                    working_size=working_size,
                    keep_aspect=keep_aspect,
                    flip_average=flip_average,
                    hints=[h.hint for h in hints[:count]] or None,
                )
                pred = np.asarray(output.convert("RGB"), dtype=np.uint8)
                metrics = image_metrics(pred, target)
                rows.append({m: metrics[m] for m in HINT_METRICS})
                errors += hint_errors(pred, hints[:count])
                bar.update(1)
            row = {m: float(np.mean([r[m] for r in rows])) for m in HINT_METRICS}
            if errors:
                row[HINT_ERROR] = float(np.mean(errors))
                row[HINT_WITHIN] = float(np.mean(np.asarray(errors) <= HINT_ERROR_BAR))
            by_count[count] = row
        models[colorizer.name] = {"takes_hints": bool(colorizer.takes_hints), "counts": by_count}
    bar.close()
    curve = {"counts": counts, "seed": seed, "grid": side, "edge_share": EDGE_SHARE, "models": models}
    curve["bars"] = {name: bar_verdicts(model) for name, model in models.items() if model["takes_hints"]}
    return curve


def _row(by_count: dict, count: int) -> dict[str, float] | None:
    """The row of `count` hints (JSON round trips turn the keys into strings)."""
    return by_count.get(count, by_count.get(str(count)))


def bar_verdicts(model: dict[str, Any]) -> dict[str, Any]:
    """The two hint bars for one model's curve: each value, and whether it is met (None: not measured)."""
    zero, ten = _row(model["counts"], 0), _row(model["counts"], BAR_COUNT)
    reduction = None
    if zero and ten and zero["ciede2000"] > 0:
        reduction = 1.0 - ten["ciede2000"] / zero["ciede2000"]
    error = ten.get(HINT_ERROR) if ten else None
    return {
        "ciede2000_reduction": reduction,
        "ciede2000_reduction_met": None if reduction is None else reduction >= CIEDE_REDUCTION_BAR,
        "hint_error": error,
        "hint_error_met": None if error is None else error <= HINT_ERROR_BAR,
    }


def _cell(value: float | None, decimals: int) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{decimals}f}"


def curve_rows(by_count: dict) -> list[tuple[int, dict[str, float]]]:
    """(count, row) pairs in increasing count, whatever the keys' type."""
    return sorted(((int(count), row) for count, row in by_count.items()), key=lambda pair: pair[0])


def hint_curve_lines(curve: dict[str, Any]) -> list[str]:
    """Markdown: one row per model and count, the models that take no hints, then each hint model's bars."""
    lines = [
        "## Hint curve",
        "",
        f"A simulated user gives each photo n colour points drawn from its ground truth (the training sampler: "
        f"patches of 1x1 to 7x7 pixels at {curve['grid']} px, {curve['edge_share']:.0%} on colour edges, each "
        f"coloured with the patch's mean true Lab; seed {curve['seed']}; the first n of one draw, the same for "
        "every model). Means over images; hint error = CIEDE2000 between the output over each hinted patch and "
        f"the hint's colour (mean over patches), within {HINT_ERROR_BAR:g} = share of patches within "
        f"{HINT_ERROR_BAR:g} CIEDE2000.",
        "",
        "| model | hints | ΔE2000 ↓ | ab AuC ↑ | ΔColourfulness ↓ | hint error ↓ | within 5 ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, model in curve["models"].items():
        for count, row in curve_rows(model["counts"]):
            lines.append(
                f"| {name} | {count} | {row['ciede2000']:.2f} | {row['ab_auc']:.4f} | "
                f"{row['colourfulness_delta']:.1f} | {_cell(row.get(HINT_ERROR), 2)} | "
                f"{_cell(row.get(HINT_WITHIN), 2)} |"
            )
    others = [name for name, model in curve["models"].items() if not model["takes_hints"]]
    if others:
        lines += ["", f"Does not take hints (scored at 0 hints only, never fed hints): {', '.join(others)}."]
    if not curve["bars"]:
        lines += ["", "No model here takes hints, so no bar is judged."]
    for name, verdicts in curve["bars"].items():
        lines += ["", f"Bars for {name}:", *verdict_lines(verdicts)]
    return lines


def hint_curve_chart(curve: dict[str, Any]) -> Figure:
    """CIEDE2000 against the number of hints: a line per hint model (its 30 % bar dotted), the models that take
    no hints as dashed horizontal references at their 0-hint value."""
    from matplotlib.figure import Figure  # the report's chart stack, loaded when a report is written

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    counts = [int(c) for c in curve["counts"]]
    for number, (name, model) in enumerate(curve["models"].items()):
        rows = curve_rows(model["counts"])
        colour = "0.6" if name == "grayscale" else f"C{number}"  # the baseline in grey, as the bar charts show it
        if not rows:
            continue
        if model["takes_hints"]:
            ax.plot([c for c, _ in rows], [r["ciede2000"] for _, r in rows], "o-", color=colour, label=name)
            zero = _row(model["counts"], 0)
            if zero:
                target = (1 - CIEDE_REDUCTION_BAR) * zero["ciede2000"]
                ax.axhline(target, color=colour, linestyle=":", linewidth=1, label=f"{name}: the 30 % bar")
        else:
            ax.axhline(rows[0][1]["ciede2000"], color=colour, linestyle="--", linewidth=1, label=f"{name} (no hints)")
    ax.set_xticks(counts)
    ax.set_xlabel("hints per photo (simulated user)")
    ax.set_ylabel("CIEDE2000 ↓ (mean over images)")
    ax.set_title("Hint curve")
    ax.legend(fontsize="small")
    return fig
