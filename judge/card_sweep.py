"""Write a `judge.evaluate --sweep` result into a saved model's card (the "Working-size sweep" section).

    python -m judge.evaluate --models colour_l1=weights/colour_l1 --dataset data/corpus --split validation \
        --image_size 512 --sweep 128,192,256,384,512 --out outputs/eval_sweep
    python -m judge.card_sweep --report outputs/eval_sweep/report.json --model weights/colour_l1 --name colour_l1

Bundling a model is training it, evaluating it across working sizes, then this step, so the card a user reads
on the Hub says how the model holds up at every size the app's slider allows. The sweep lives in the config's
`colorlab.training` block (the config is the truth; the card is regenerated from it), and the model is re-saved
through the atomic writer in its own dtype.
"""

from __future__ import annotations

import sys
from typing import Any

from judge.card_command import evaluate_command, rounded_rows, run_card_command


def sweep_for_card(report: dict[str, Any], name: str, *, source: str | None = None) -> dict[str, Any]:
    """The card's sweep block for model `name` of an evaluate report: the command that reproduces it (naming the
    model by `source`, default the report's), gray's CIEDE2000 and each size's metrics (rounded as the card shows)."""
    sweep = report.get("sweep")
    if not sweep:
        raise ValueError("the report has no working-size sweep; run judge.evaluate with --sweep 128,192,256,384,512")
    if name not in sweep["models"]:
        known = ", ".join(m for m in sweep["models"] if m != "grayscale")
        raise ValueError(f"the sweep has no model named {name!r}; pass --name with one of: {known}.")
    gray = sweep["models"].get("grayscale", {})
    gray_ciede = next(iter(gray.values()))["ciede2000"] if gray else None  # None: JSON has no NaN
    command = evaluate_command(report, name, source, "--sweep " + ",".join(str(s) for s in sweep["sizes"]))
    sizes = rounded_rows(sweep["models"][name])
    return {"command": command, "gray_ciede2000": gray_ciede, "sizes": sizes}


def main(argv: list[str] | None = None) -> int:
    return run_card_command(
        argv,
        prog="python -m judge.card_sweep",
        description=__doc__.split("\n\n")[0],
        what="sweep",
        report_flag="--sweep",
        card_key="sweep",
        build_block=sweep_for_card,
        summary=lambda block: ", ".join(block["sizes"]),
    )


if __name__ == "__main__":
    sys.exit(main())
