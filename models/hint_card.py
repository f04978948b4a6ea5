"""The model-card sections of a hint model: how to give it colour points, and its hint curve with the two hint bars.

    sections.append(hints_usage_section())                 # for a network built with hints=True
    sections.append(hint_curve_section(card_data["hint_curve"]))   # written by python -m judge.card_hints

The curve comes from `python -m judge.evaluate --hints 0,1,2,5,10,20` (judge.hint_curve); `judge.card_hints`
stores it in the config's card data (so a re-save keeps it) and this module renders it. The bars and their
sentences live here because both the evaluation report and the card state them, and models/ never imports trainer/.
Standard library only.
"""

from __future__ import annotations

from typing import Any

BAR_COUNT = 10  # the hint bars are judged at 10 hints per photo
CIEDE_REDUCTION_BAR = 0.30  # with 10 hints, CIEDE2000 at least 30 % below the 0-hint value
HINT_ERROR_BAR = 5.0  # the colour at the hinted points within 5 CIEDE2000 of the hint


def _met(flag: object) -> str:
    if flag is True:
        return "**met**"
    if flag is False:
        return "**not met**"
    return f"not measured (evaluate with {BAR_COUNT} in --hints)"


def verdict_lines(verdicts: dict[str, Any]) -> list[str]:
    """The two hint bars as markdown bullets, each with its measured value and whether it is met."""
    reduction = verdicts.get("ciede2000_reduction")
    error = verdicts.get("hint_error")
    reduction_text = ""
    if isinstance(reduction, int | float):
        percent = round(100 * reduction, 1)  # -0.04 % reads "0.0 % lower", not "-0.0 % lower"
        reduction_text = f" (measured: {abs(percent):.1f} % {'lower' if percent >= 0 else 'higher'})"
    error_text = f" (measured: {error:.2f} on average)" if isinstance(error, int | float) else ""
    return [
        f"- With {BAR_COUNT} hints, CIEDE2000 at least {100 * CIEDE_REDUCTION_BAR:.0f} % lower than with 0 hints"
        f"{reduction_text}: {_met(verdicts.get('ciede2000_reduction_met'))}.",
        f"- With {BAR_COUNT} hints, the colour at the hinted points within {HINT_ERROR_BAR:g} CIEDE2000 of the hint"
        f"{error_text}: {_met(verdicts.get('hint_error_met'))}.",
    ]


def _number(value: object, decimals: int) -> str:
    return f"{value:.{decimals}f}" if isinstance(value, int | float) else "—"


def hint_curve_section(block: dict[str, Any]) -> str:
    """`{"command", "split", "n_images", "seed", "counts": {"0": {"ciede2000", "ab_auc", "colourfulness_delta",
    "hint_error", "hints_within_5"}, ...}, "bars": {...}}` -> the card's "Hint curve" section."""
    command = block.get("command", "python -m judge.evaluate --hints 0,1,2,5,10,20")
    lines = [
        "## Hint curve",
        f"`{command}`: on {block.get('n_images', '?')} "
        f"photos of the {block.get('split', 'validation')} split, a simulated user gives each photo n colour points "
        f"drawn from its true colours (seed {block.get('seed', 0)}; the same points for every model). Hint error: "
        "CIEDE2000 between the output over each hinted patch and the hint's colour.",
        "",
        "| hints | CIEDE2000 | ab AuC | \\|Δ colourfulness\\| | hint error | within 5 |",
        "|---|---|---|---|---|---|",
    ]
    counts = block.get("counts", {})
    for count in sorted(counts, key=int):
        row = counts[count]
        lines.append(
            f"| {count} | {_number(row.get('ciede2000'), 2)} | {_number(row.get('ab_auc'), 4)} | "
            f"{_number(row.get('colourfulness_delta'), 1)} | {_number(row.get('hint_error'), 2)} | "
            f"{_number(row.get('hints_within_5'), 2)} |"
        )
    lines += ["", "ColorLab's bars for hint models:", *verdict_lines(block.get("bars", {}))]
    return "\n".join(lines)


def hints_usage_section() -> str:
    """How to give a hint model colour points, from Python and from the command line (models.hints)."""
    return (
        "## Colour hints\n"
        "This model takes colour hints: click-like points that say which colour a thing is (Zhang et al. 2017). "
        "Without hints it colorizes automatically. A hint is a point in the photo's own pixels (x, y; 0, 0 is the "
        "top-left pixel), a colour given as RGB (kept at the photo's own lightness there) or as CIELAB, and an "
        "optional radius in pixels:\n\n"
        "```python\nfrom models.hints import Hint\n\n"
        "hints = [Hint(x=412, y=230, rgb=(200, 30, 40)), Hint(x=80, y=40, lab=(70, -5, -30), radius=12)]\n"
        'color = colorizer.colorize(Image.open("photo.jpg"), hints=hints)\n```\n\n'
        "From the command line, for one photo: `colorlab-colorize --model PATH_OR_REPO_ID photo.jpg --hints "
        "hints.json --out colorized/`, where hints.json is a JSON list such as "
        '`[{"x": 412, "y": 230, "rgb": [200, 30, 40]}, {"x": 80, "y": 40, "rgb": "#3060c0", "radius": 12}]`.\n\n'
        "The ONNX export (`colorlab-export`) has one input, L, so it refuses hint models: run this one in PyTorch."
    )
