"""Working-size sweep: the same colorizers and images at several working sizes (``judge.evaluate --sweep``).

    sweep = run_sweep(evaluate, colorizers, images, sizes=(128, 192, 256, 384, 512))  # judge.evaluate.evaluate
    lines = sweep_lines(sweep)   # markdown table for report.md

A colorizer that is right at the size it was trained for but paints blotches or changes its colours at another
size (DDColor #54: "different input sizes give significantly different colorizations") fails users who pick a
size, and the app's working-size slider lets them. The sweep shows, per model, CIEDE2000, ab AuC,
|Δ colourfulness| and the blotch share at every size, and the spread of CIEDE2000 across the sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

SWEEP_METRICS = ("ciede2000", "ab_auc", "colourfulness_delta", "blotches")
DEFAULT_SWEEP = (128, 192, 256, 384, 512)


def run_sweep(
    evaluate: Callable[..., dict], colorizers: Sequence[Any], images: Any, *, sizes: Sequence[int], **options: Any
) -> dict[str, Any]:
    """{"sizes": [...], "models": {name: {size: {metric: mean}}}, "spread": {name: max-min CIEDE2000 over sizes}}.

    `evaluate` is `judge.evaluate.evaluate` (passed in, so this module does not import the command's module).
    """
    table: dict[str, dict[int, dict[str, float]]] = {c.name: {} for c in colorizers}
    for size in sizes:
        raw = evaluate(list(colorizers), images, working_size=size, grid_images=0, progress=False, **options)
        for colorizer in colorizers:
            rows = [row for row in raw["per_image"] if row["model"] == colorizer.name]
            table[colorizer.name][int(size)] = {m: float(np.mean([row[m] for row in rows])) for m in SWEEP_METRICS}
    spread = {
        name: max(v["ciede2000"] for v in by_size.values()) - min(v["ciede2000"] for v in by_size.values())
        for name, by_size in table.items()
    }
    return {"sizes": [int(s) for s in sizes], "models": table, "spread": spread}


def sweep_lines(sweep: dict[str, Any]) -> list[str]:
    """Markdown: one row per model and size, then the CIEDE2000 spread per model."""
    lines = [
        "## Working-size sweep",
        "",
        "Each model run at every working size on the same images (means over images).",
        "",
        "| model | working size | ΔE2000 ↓ | ab AuC ↑ | ΔColourfulness ↓ | Blotches (%) ↓ |",
        "|---|---|---|---|---|---|",
    ]
    for name, by_size in sweep["models"].items():
        for size in sweep["sizes"]:
            row = by_size[size] if size in by_size else by_size[str(size)]  # JSON round trips turn keys into str
            lines.append(
                f"| {name} | {size} | {row['ciede2000']:.2f} | {row['ab_auc']:.4f} | "
                f"{row['colourfulness_delta']:.1f} | {row['blotches']:.3f} |"
            )
    lines += ["", "ΔE2000 spread across the sizes (max - min): "]
    lines[-1] += ", ".join(f"{name} {value:.2f}" for name, value in sweep["spread"].items()) + "."
    return lines
