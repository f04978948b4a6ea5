"""One flag style for every ColorLab command: `--two_words`, with `--two-words` accepted as the same flag.

    parser = FlagParser(prog="python -m models.colorize")
    parser.add_argument("--working_size", default="auto")
    parser.parse_args(["--working-size", "384"])   # the same as --working_size 384 (and --working-size=384)

The training scripts follow diffusers' underscores (`--output_dir`, `--push_to_hub`), so every command spells its
flags that way and `--help` shows them so; the dashed spelling most other tools use is accepted everywhere as an
alias (as transformers' HfArgumentParser does), so a habit never costs a failed run. The alias works both ways (a
flag still defined with dashes also answers to underscores), and sub-commands made with `add_subparsers` are
FlagParsers too. Standard library only, so a command parses its flags before it imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence


def canonical_flag(token: str, known: Collection[str]) -> str:
    """`token` as the parser spells it: `--two-words[=VALUE]` -> `--two_words[=VALUE]` (or the reverse) when only
    the other spelling is a known flag; values, positionals and unknown flags are returned unchanged."""
    if not token.startswith("--") or token == "--":
        return token
    name, equals, value = token.partition("=")
    if name in known:
        return token
    words = name[2:]
    for spelling in ("--" + words.replace("-", "_"), "--" + words.replace("_", "-")):
        if spelling in known:
            return spelling + equals + value
    return token


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser that reads `--two-words` as its `--two_words` flag (see the module docstring)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = list(sys.argv[1:] if args is None else args)
        known = set(self._option_string_actions)
        rewritten: list[str] = []
        for index, token in enumerate(tokens):
            if token == "--":  # everything after it is a positional argument, spelled as given
                rewritten += tokens[index:]
                break
            rewritten.append(canonical_flag(token, known))
        return super().parse_known_args(rewritten, namespace)
