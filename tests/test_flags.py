"""One flag style for every command (models.flags.FlagParser): `--two_words`, `--two-words` accepted as an alias.

.venv/bin/python -m pytest tests/test_flags.py -q
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

import pytest

from judge.evaluate import build_parser as evaluate_parser
from models.colorize import build_parser as colorize_parser
from models.flags import FlagParser, canonical_flag
from trainer.args import _build_parser as train_parser

# Every command's parser; each must spell its flags one way and accept the other spelling.
COMMANDS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "python -m models.colorize": colorize_parser,
    "python -m judge.evaluate": evaluate_parser,
    "accelerate launch trainer/train.py": train_parser,
}


def _parser() -> FlagParser:
    parser = FlagParser(prog="demo")
    parser.add_argument("--working_size", type=int, default=None)
    parser.add_argument("--flip_average", action="store_true")
    parser.add_argument("--keep-aspect", action="store_true")  # an old dashed definition answers to both too
    parser.add_argument("inputs", nargs="*")
    return parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--working_size", "384", "--flip_average", "--keep-aspect"],
        ["--working-size", "384", "--flip-average", "--keep_aspect"],
        ["--working-size=384", "--flip-average", "--keep-aspect"],
    ],
)
def test_both_spellings_give_the_same_arguments(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    assert (args.working_size, args.flip_average, args.keep_aspect, args.inputs) == (384, True, True, [])


def test_values_positionals_and_unknown_flags_are_left_alone() -> None:
    args = _parser().parse_args(["--working_size", "64", "a-b_c.png", "--", "--flip-average"])
    assert args.inputs == ["a-b_c.png", "--flip-average"] and not args.flip_average
    assert canonical_flag("--no-such-flag", {"--working_size"}) == "--no-such-flag"
    assert canonical_flag("-w", {"--working_size"}) == "-w"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--working-sise", "64"])


def test_sub_commands_accept_both_spellings_too() -> None:
    parser = FlagParser(prog="demo")
    build = parser.add_subparsers(dest="command").add_parser("build")
    build.add_argument("--val_fraction", type=float, default=0.1)
    assert parser.parse_args(["build", "--val-fraction", "0.2"]).val_fraction == 0.2


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_spells_its_flags_with_underscores_and_accepts_dashes(command: str) -> None:
    parser = COMMANDS[command]()
    assert isinstance(parser, FlagParser)
    flags = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    dashed = [flag for flag in flags if re.search(r"\w-\w", flag)]
    assert not dashed, f"{command} spells {dashed} with dashes; use underscores (dashes are accepted as aliases)"
    known = set(flags)
    for flag in flags:
        assert canonical_flag(flag.replace("_", "-"), known) == flag
