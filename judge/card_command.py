"""The shared body of the commands that write an evaluation result into a saved model's card
(`python -m judge.card_sweep`, `python -m judge.card_hints`): read judge.evaluate's report.json, take one
model's block from it, store the block in the model's card data and save the folder atomically. Every failure is one
sentence and exit status 2, and nothing is changed unless the save succeeds."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.base import ColorizationNet
from models.flags import FlagParser
from models.hub import load_model, save_model_atomically

BlockBuilder = Callable[..., dict[str, Any]]  # (report, name, *, source) -> the card's block


def run_card_command(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    what: str,
    report_flag: str,
    card_key: str,
    build_block: BlockBuilder,
    summary: Callable[[dict[str, Any]], str],
    refuse_model: Callable[[ColorizationNet, str], str | None] = lambda model, folder: None,
) -> int:
    """Parse --report/--model/--name/--source, write `build_block`'s block under `card_key`; 0, or 2 with a sentence.

    `what` names the block in messages ("sweep", "hint curve"), `report_flag` the evaluate flag that makes one,
    `summary(block)` the success line's detail, `refuse_model` a sentence when the model cannot carry the block."""
    parser = FlagParser(prog=prog, description=description)
    parser.add_argument("--report", required=True, help=f"report.json written by judge.evaluate {report_flag}.")
    parser.add_argument("--model", required=True, help=f"The saved model folder whose card gets the {what}.")
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
        return _fail(f"could not read {args.report} ({error}); pass the report.json of a judge.evaluate run.")
    try:
        block = build_block(report, args.name, source=args.source)
    except ValueError as error:
        return _fail(str(error))
    except (KeyError, TypeError, AttributeError, StopIteration):
        return _fail(f"{args.report} is not a judge.evaluate {report_flag} report; pass the report.json it wrote.")
    try:
        model = load_model(args.model)
        refusal = refuse_model(model, args.model)
        if refusal:
            return _fail(refusal)
        model.card_data[card_key] = block
        save_model_atomically(model, args.model)
    except (OSError, ValueError) as error:
        return _fail(f"could not update {args.model} ({error}); nothing was changed.")
    print(f"{args.model}: {what} over {summary(block)} written to the card.")
    return 0


def _fail(sentence: str) -> int:
    print(f"error: {sentence}", file=sys.stderr)
    return 2


def evaluate_command(report: dict[str, Any], name: str, source: str | None, flags: str) -> str:
    """The `judge.evaluate` command line that reproduces model `name`'s part of `report` (the model named by `source`,
    default the report's path for it), with the result's own `flags` (e.g. "--sweep 128,192")."""
    config = report.get("config", {})
    source = source or config.get("sources", {}).get(name, name)
    return (
        f"python -m judge.evaluate --models {shlex.quote(str(source))} --dataset {config.get('dataset', '?')} "
        f"--split {config.get('split', 'validation')} --image_size {config.get('image_size', '?')} {flags}"
    )


def rounded_rows(rows: dict[Any, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """A result's rows keyed by text (JSON keys), each metric rounded as the card shows it."""
    return {str(key): {metric: round(float(value), 4) for metric, value in row.items()} for key, row in rows.items()}
