"""Write a `judge.evaluate --hints` result into a hint model's card (the "Hint curve" section).

    python -m judge.evaluate --models colour_hints=weights/colour_hints --dataset data/corpus --split validation \
        --image_size 512 --hints 0,1,2,5,10,20 --out outputs/eval_hints
    python -m judge.card_hints --report outputs/eval_hints/report.json --model weights/colour_hints \
        --name colour_hints

Bundling a hint model is training it, scoring it as a simulated user gives it more and more colour points, then
this step, so the card says how much the points help and whether the hint bars are met. As with the working-size
sweep (`judge.card_sweep`), the curve lives in the config's `colorlab.training` block (the card is regenerated
from it, so a re-save keeps it), and the model is re-saved through the atomic writer in its own dtype.
"""

from __future__ import annotations

import sys
from typing import Any

from judge.card_command import evaluate_command, rounded_rows, run_card_command
from models.base import ColorizationNet


def hint_curve_for_card(report: dict[str, Any], name: str, *, source: str | None = None) -> dict[str, Any]:
    """The card's hint-curve block for model `name` of an evaluate report: the command that reproduces it (naming
    the model by `source`, default the report's), the split, images and seed, each count's metrics (rounded as the
    card shows them) and the bars' verdicts."""
    curve = report.get("hints")
    if not curve:
        raise ValueError("the report has no hint curve; run judge.evaluate with --hints 0,1,2,5,10,20")
    hint_models = [m for m, entry in curve["models"].items() if entry["takes_hints"]]
    if name not in hint_models:
        if name in curve["models"]:
            raise ValueError(f"{name} does not take hints, so it has no hint curve; pass a hint model's --name.")
        known = ", ".join(hint_models) or "none (no model of that report takes hints)"
        raise ValueError(f"the hint curve has no model named {name!r}; pass --name with one of: {known}.")
    config = report.get("config", {})
    counts_flag = ",".join(str(c) for c in curve["counts"])
    command = evaluate_command(report, name, source, f"--hints {counts_flag} --seed {curve['seed']}")
    counts = rounded_rows(curve["models"][name]["counts"])
    bars = {
        key: (round(float(value), 4) if isinstance(value, float) else value)
        for key, value in curve["bars"][name].items()
    }
    return {
        "command": command,
        "split": config.get("split", "validation"),
        "n_images": report.get("n_images"),
        "seed": curve["seed"],
        "counts": counts,
        "bars": bars,
    }


def _refuse_automatic_models(model: ColorizationNet, folder: str) -> str | None:
    if model.takes_hints:
        return None
    return f"{folder} does not take hints, so its card gets no hint curve; pass the hint model's folder."


def main(argv: list[str] | None = None) -> int:
    return run_card_command(
        argv,
        prog="python -m judge.card_hints",
        description=__doc__.split("\n\n")[0],
        what="hint curve",
        report_flag="--hints",
        card_key="hint_curve",
        build_block=hint_curve_for_card,
        summary=lambda block: ", ".join(block["counts"]) + " hints",
        refuse_model=_refuse_automatic_models,
    )


if __name__ == "__main__":
    sys.exit(main())
