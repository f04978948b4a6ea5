"""Write a `trainer.evaluate --sweep` result into a saved model's card (the "Working-size sweep" section).

    python -m trainer.evaluate --models colour_l1=weights/colour_l1 --dataset data/corpus --split validation \
        --image_size 512 --sweep 128,192,256,384,512 --out outputs/eval_sweep
    python -m trainer.card_sweep --report outputs/eval_sweep/report.json --model weights/colour_l1 --name colour_l1

Bundling a model is training it, evaluating it across working sizes, then this step, so the card a user reads
on the Hub says how the model holds up at every size the app's slider allows. The sweep lives in the config's
`colorlab.training` block (the config is the truth; the card is regenerated from it), and the model is re-saved
through the atomic writer in its own dtype.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from models.flags import FlagParser
from models.hub import load_model, save_model_atomically


def sweep_for_card(report: dict[str, Any], name: str, *, source: str | None = None) -> dict[str, Any]:
    """The card's sweep block for model `name` of an evaluate report: the command that reproduces it (naming the
    model by `source`, default the report's), gray's CIEDE2000 and each size's metrics (rounded as the card shows)."""
    sweep = report.get("sweep")
    if not sweep:
        raise ValueError("the report has no working-size sweep; run trainer.evaluate with --sweep 128,192,256,384,512")
    if name not in sweep["models"]:
        known = ", ".join(m for m in sweep["models"] if m != "grayscale")
        raise ValueError(f"the sweep has no model named {name!r}; pass --name with one of: {known}.")
    config = report.get("config", {})
    gray = sweep["models"].get("grayscale", {})
    gray_ciede = next(iter(gray.values()))["ciede2000"] if gray else None  # None: JSON has no NaN
    source = source or config.get("sources", {}).get(name, name)
    command = (
        f"python -m trainer.evaluate --models {shlex.quote(str(source))} --dataset {config.get('dataset', '?')} "
        f"--split {config.get('split', 'validation')} --image_size {config.get('image_size', '?')} "
        f"--sweep {','.join(str(s) for s in sweep['sizes'])}"
    )
    sizes = {
        str(size): {metric: round(float(value), 4) for metric, value in row.items()}
        for size, row in sweep["models"][name].items()
    }
    return {"command": command, "gray_ciede2000": gray_ciede, "sizes": sizes}


def main(argv: list[str] | None = None) -> int:
    parser = FlagParser(prog="python -m trainer.card_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="report.json written by trainer.evaluate --sweep.")
    parser.add_argument("--model", required=True, help="The saved model folder whose card gets the sweep.")
    parser.add_argument("--name", required=True, help="The model's name in the report (the NAME of NAME=PATH).")
    parser.add_argument(
        "--source",
        default=None,
        help="How the card's command names the model, e.g. its bundled folder when the report evaluated the "
        "training output (default: the report's PATH).",
    )
    args = parser.parse_args(argv)
    try:
        report = json.loads(Path(args.report).read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(
            f"error: could not read {args.report} ({error}); pass the report.json of a trainer.evaluate run.",
            file=sys.stderr,
        )
        return 2
    try:
        block = sweep_for_card(report, args.name, source=args.source)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, AttributeError, StopIteration):
        print(
            f"error: {args.report} is not a trainer.evaluate --sweep report; pass the report.json it wrote.",
            file=sys.stderr,
        )
        return 2
    try:
        model = load_model(args.model)
        model.card_data["sweep"] = block
        save_model_atomically(model, args.model)
    except (OSError, ValueError) as error:
        print(f"error: could not update {args.model} ({error}); nothing was changed.", file=sys.stderr)
        return 2
    print(f"{args.model}: sweep over {', '.join(block['sizes'])} written to the card.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
