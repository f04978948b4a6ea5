"""A built cut-out set on disk (the folder `python -m corpus.cutouts build` writes): reading and labelling it.

Standard library only, so `trainer.args` checks `--composite_cutouts` before torch is imported, and the data
loader refuses a cut-out set given as `--dataset` (cut-outs are never training or validation photos on their own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MARKER = "cutouts.json"  # written by corpus.cutouts next to metadata.jsonl; names a cut-out set
BUILD_HINT = "build it with 'python -m corpus.cutouts build --out DIR'"
MAX_PASTES = 2  # cut-outs pasted onto one composited crop: 1 to this many


class CutoutSetError(ValueError):
    """--composite_cutouts names no usable cut-out set; the message says what to do."""


@dataclass(frozen=True)
class Cutout:
    path: Path
    mirror: bool  # False: text or handedness that a mirror image would get wrong


def read_cutout_set(folder: str | Path) -> list[Cutout]:
    """The cut-outs listed in `folder`/metadata.jsonl; raises CutoutSetError in one sentence when the folder is
    missing, empty, not a cut-out set, or misses listed images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CutoutSetError(f"--composite_cutouts {folder} is not a folder; {BUILD_HINT}.")
    meta = folder / "metadata.jsonl"
    if not (folder / MARKER).is_file() or not meta.is_file():
        raise CutoutSetError(
            f"--composite_cutouts {folder} is not a cut-out set (it has no {MARKER} and metadata.jsonl); {BUILD_HINT}."
        )
    cutouts = []
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cutouts.append(Cutout(folder / row["file_name"], bool(row.get("mirror", True))))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CutoutSetError(
                f"{meta}:{number} is not a cut-out row ({err}); rebuild the set: {BUILD_HINT}."
            ) from err
    missing = [c.path.name for c in cutouts if not c.path.is_file()]
    if not cutouts or missing:
        what = "lists no cut-outs" if not cutouts else f"misses {len(missing)} listed images (e.g. {missing[0]})"
        raise CutoutSetError(f"--composite_cutouts {folder} {what}; {BUILD_HINT}.")
    return cutouts


def is_cutout_set(folder: str | Path) -> bool:
    """True for a folder built by corpus.cutouts."""
    return (Path(folder) / MARKER).is_file()


def describe(folder: str | Path, probability: float) -> str:
    """The label the run summary and the model card carry when `--composite_cutouts` is on.

    Never raises: it is written when training ends, and a cut-out folder moved since must not cost the run.
    """
    try:
        count = f"{len(read_cutout_set(folder))} cut-outs"
    except CutoutSetError:
        count = "cut-outs"
    return (
        f"composites: with probability {probability:g}, 1-{MAX_PASTES} photographic cut-outs from {folder} "
        f"({count}, python -m corpus.cutouts) pasted onto training crops; validation photos never composited"
    )
