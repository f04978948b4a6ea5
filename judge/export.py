"""python -m judge.ratings export --format jsonl|csv|parquet [--data_dir DIR] [--out FILE]

Vote rows on disk: the one place that knows the export columns and how each format writes and reads them;
also home of the export CLI above, and used by the Hub sync shards (``judge.sync``).

    write_export(rows, "parquet", Path("votes.parquet"))   # rows = [vote.to_row() for vote in store.votes()]
    rows = read_export(Path("votes.parquet"))              # the same dicts back, for any of the formats
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from judge.outliers import flag_outlier_voters
from judge.ratings import DB_NAME, RatingsError, RatingsStore, atomic_write, default_data_dir
from models.flags import FlagParser

# Column name -> type; the order is the column order of every export.
COLUMNS: dict[str, type] = {
    "vote_id": int,
    "created_at": str,
    "model_a": str,
    "model_b": str,
    "winner": str,
    "rating_a": int,
    "rating_b": int,
    "image_sha256": str,
    "voter_id": str,
    # Why the leaderboard leaves this vote out (judge.outliers), computed over all votes when the export CLI runs;
    # empty when the vote counts, and always empty in the Hub sync's append-only shards (a flag can come later).
    "excluded_reason": str,
}
FORMATS = ("jsonl", "csv", "parquet")


def _ordered(row: dict) -> dict:
    return {name: row.get(name) for name in COLUMNS}


def write_jsonl(rows: Iterable[dict], f: IO[str]) -> None:
    for row in rows:
        f.write(json.dumps(_ordered(row), ensure_ascii=False) + "\n")


def _write_csv(rows: Iterable[dict], f: IO[str]) -> None:
    writer = csv.DictWriter(f, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_ordered(row) for row in rows)  # None becomes an empty cell


def _write_parquet(rows: list[dict], f: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # An explicit schema keeps rating columns nullable integers even when every value is missing.
    arrow_types = {int: pa.int64(), str: pa.string()}
    schema = pa.schema([(name, arrow_types[kind]) for name, kind in COLUMNS.items()])
    pq.write_table(pa.Table.from_pylist([_ordered(row) for row in rows], schema=schema), f)


def write_export(rows: list[dict], fmt: str, out: Path | None) -> None:
    """Write rows as ``fmt`` to ``out`` (atomically: a crash leaves any old file whole) or, for text, to stdout."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "parquet":
        if out is None:
            raise ValueError("parquet is a binary format; pass an output file.")
        buf = io.BytesIO()
        _write_parquet(rows, buf)
        data = buf.getvalue()
    else:
        text = io.StringIO(newline="")
        (write_jsonl if fmt == "jsonl" else _write_csv)(rows, text)
        if out is None:
            sys.stdout.write(text.getvalue())
            return
        data = text.getvalue().encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, data)


def _typed(row: dict) -> dict:
    typed = {}
    for name, kind in COLUMNS.items():
        value = row.get(name)
        typed[name] = None if value in (None, "") else kind(value)
    return typed


def read_export(path: Path) -> list[dict]:
    """Read an export back into typed dicts; the format comes from the file's suffix."""
    fmt = path.suffix.lstrip(".")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [_typed(row) for row in pq.read_table(path).to_pylist()]
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        return [_typed(json.loads(line)) for line in text.splitlines() if line.strip()]
    if fmt == "csv":
        return [_typed(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
    raise ValueError(f"Cannot tell the format of {path}; name it .jsonl, .csv or .parquet.")


def _export(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if not (data_dir / DB_NAME).is_file():  # check first: opening a store would create an empty database
        print(
            f"error: no ratings database at {data_dir / DB_NAME}; pass --data_dir (the app's COLORLAB_DATA_DIR).",
            file=sys.stderr,
        )
        return 2
    if args.format == "parquet" and not args.out:
        print("error: parquet is a binary format; pass --out FILE.parquet.", file=sys.stderr)
        return 2
    with RatingsStore(data_dir) as store:
        votes = store.votes()
    flags = flag_outlier_voters(votes)
    rows = [{**vote.to_row(), "excluded_reason": getattr(flags.get(vote.voter_id), "reason", None)} for vote in votes]
    write_export(rows, args.format, Path(args.out) if args.out else None)
    if args.out:
        print(f"wrote {len(rows)} votes to {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``python -m judge.ratings`` command line; returns the exit status."""
    parser = FlagParser(prog="python -m judge.ratings", description="Export the arena's votes.")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write every vote as jsonl, csv or parquet")
    export.add_argument("--format", choices=FORMATS, default="jsonl")
    export.add_argument("--data_dir", help="folder holding ratings.sqlite3 (default: COLORLAB_DATA_DIR or ./data)")
    export.add_argument("--out", help="output file (default: standard output; required for parquet)")
    args = parser.parse_args(argv)
    try:
        return _export(args)
    except (RatingsError, OSError, sqlite3.Error) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
