"""python -m corpus.cutouts build --out data/cutouts   (also: list)

Builds the cut-out set: photographic objects, animals and people with a real alpha channel (Tux Paint stamps and
Scratch costumes), listed one by one in the reviewed allow-list ``corpus/cutouts_manifest.jsonl`` (source
package, path, sha256, licence, credit, category, and whether the picture may be mirrored). They are used only by
the training option ``--composite_cutouts``, which pastes them onto training crops of corpus photos: a cut-out is
never a training photo on its own, never a validation photo, and never enters the corpus (whose builder refuses
transparent images). The output::

    OUT/README.md          card: counts per source, category and licence; a table crediting every cut-out
    OUT/cutouts.json       marker + summary (the trainer refuses this folder as a --dataset)
    OUT/metadata.jsonl     one row per cut-out (file_name, source, licence, credit, category, mirror, ...)
    OUT/images/*.png       RGBA, cropped to the opaque part, at most MAX_SIDE pixels on the long side

Packages come from the corpus builder's cache (``apt-get download``, never installed). Each cut-out is checked
against its manifest sha256 and refused, in one line, when it has no transparent pixel ("not a cut-out") or too
few colours to be a photograph (a drawing or a posterised image); the exit status is 1 when anything was left out.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from corpus.cutout_set import MARKER
from corpus.photos import DEFAULT_CACHE, is_non_commercial, write_atomic
from corpus.sources import PackageCache, SourceError
from models.flags import FlagParser

MANIFEST = Path(__file__).with_name("cutouts_manifest.jsonl")
MAX_SIDE = 384  # pasted at most ~80 % of a 256-384 px crop; smaller files decode faster in the data loader
OPAQUE = 250  # alpha at or above this counts as the object itself
# Distinct colours (6 bits a channel) among opaque pixels below which a picture is a drawing or posterised.
# Measured on the reviewed stamps: photographs have 140-5000 (GIF photos ~220), rejected flat drawings 1-75.
MIN_COLOURS = 128
# Shown in the card: how the allow-list was chosen (contact sheets by folder, decided per folder or file pattern).
REVIEW_RULES = (
    "Chosen by eye from contact sheets of every candidate, folder by folder. Kept: photographs of real things "
    "(animals, people, food, plants, vehicles, objects, coins, the Moon and planets). Left out: SVG stamps and "
    "everything under a `cartoon/` folder, drawings, 3D renders and flat-colour clip art (Tux Paint's town "
    "buildings, Easter, Hanukkah and party stamps, flags, signs, letters, clothes outlines), Tux Paint stamps marked "
    "`colorable` (their colour is the user's, not the object's), `*_mirror.png` copies (the augmentation mirrors "
    "anyway), Scratch's Fantasy and Letters folders and its drawn characters (boy*, girl*, breakdancer-*)."
)


class CutoutError(ValueError):
    """A user-facing problem with the cut-out manifest, a cut-out or the arguments."""


@dataclass(frozen=True)
class Entry:
    source: str
    path: str
    sha256: str
    licence: str
    credit: str
    category: str
    mirror: bool = True  # False: the picture has text or a handedness that a mirror image would get wrong


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    """Read and check the allow-list: every field present, one-word category, no non-commercial licence,
    no vector drawing, sha256s unique."""
    if not Path(path).is_file():
        raise CutoutError(f"the manifest {path} does not exist; pass --manifest FILE (default: {MANIFEST.name}).")
    entries, seen = [], set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = Entry(**json.loads(line))
        except (json.JSONDecodeError, TypeError) as err:
            raise CutoutError(f"{where} is not a cut-out entry ({err}); fix or remove that line.") from err
        if not all((entry.source, entry.path, entry.licence, entry.credit, entry.category)) or not re.fullmatch(
            r"[0-9a-f]{64}", entry.sha256
        ):
            raise CutoutError(f"{where} needs source, path, a 64-hex sha256, licence, credit and category.")
        if not re.fullmatch(r"[a-z]+", entry.category):
            raise CutoutError(f"{where} has category {entry.category!r}; use one lowercase word (e.g. people).")
        if is_non_commercial(entry.licence):
            raise CutoutError(f"{where} has a non-commercial licence ({entry.licence}); remove it.")
        if entry.path.lower().endswith(".svg"):
            raise CutoutError(f"{where} is an SVG drawing, not a photograph; remove it.")
        if entry.sha256 in seen:
            raise CutoutError(f"{where} repeats sha256 {entry.sha256[:12]}; list each cut-out once.")
        seen.add(entry.sha256)
        entries.append(entry)
    if not entries:
        raise CutoutError(f"{path} lists no cut-outs.")
    return entries


def output_name(entry: Entry) -> str:
    """Stable, readable, collision-free file name, e.g. ``scratch_anjuli-1_3f2a9c01de.png``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(entry.path).stem).strip("-").lower()[:40]
    return f"{entry.source}_{stem}_{entry.sha256[:10]}.png"


def distinct_colours(rgba: Image.Image) -> int:
    """Distinct colours (6 bits a channel) among the opaque pixels: flat drawings have few, photographs many."""
    array = np.asarray(rgba)
    pixels = array[..., :3][array[..., 3] >= OPAQUE].astype(np.int32) >> 2
    return int(np.unique(pixels[:, 0] << 12 | pixels[:, 1] << 6 | pixels[:, 2]).size) if pixels.size else 0


def prepare(data: bytes) -> Image.Image:
    """The stored cut-out: RGBA cropped to its visible part and shrunk to MAX_SIDE; raises CutoutError if the
    picture is not a photographic cut-out."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)  # an animated GIF: its first frame
            rgba = image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise CutoutError(f"it is not a readable image ({err})") from err
    alpha = np.asarray(rgba.getchannel("A"))
    if alpha.min() == 255:
        raise CutoutError("it has no transparent pixels, so it is not a cut-out")
    if alpha.max() < OPAQUE:
        raise CutoutError("it has no opaque pixels (an empty or ghost-like picture)")
    colours = distinct_colours(rgba)
    if colours < MIN_COLOURS:
        raise CutoutError(f"it has only {colours} distinct colours: a drawing or posterised image, not a photograph")
    rgba = rgba.crop(rgba.getchannel("A").getbbox())
    if max(rgba.size) > MAX_SIDE:
        scale = MAX_SIDE / max(rgba.size)
        size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
        rgba = rgba.resize(size, Image.Resampling.LANCZOS)  # Pillow resizes RGBA premultiplied: no dark fringes
    return rgba


def build(out: Path, *, manifest: Path = MANIFEST, cache: PackageCache | None = None, log=print) -> list[str]:
    """Build (or refresh) the cut-out set in ``out``; returns one line per entry that could not be included."""
    entries = load_manifest(manifest)
    cache = cache or PackageCache(DEFAULT_CACHE)
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    rows: list[dict] = []
    by_source: dict[str, list[Entry]] = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
    for source, group in by_source.items():
        try:
            archive = cache.open(source)
            files = archive.read({e.path for e in group})
        except (SourceError, OSError, ValueError) as err:
            problems.append(f"missing package {source}: {err} (skipped {len(group)} cut-outs)")
            continue
        for entry in group:
            try:
                rows.append(_ingest(entry, files.get(entry.path), archive.version, images))
            except CutoutError as err:
                problems.append(str(err))
    keep = {Path(row["file_name"]).name for row in rows}
    for stale in images.glob("*.png"):
        if stale.name not in keep:
            stale.unlink()
    write_atomic(out / "metadata.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    marker = {"kind": "colorlab-cutouts", "count": len(rows), **_counts(rows)}
    write_atomic(out / MARKER, (json.dumps(marker, indent=1) + "\n").encode())
    write_atomic(out / "README.md", card(rows).encode())
    log(f"cut-outs: {len(rows)} in {out}; {len(problems)} left out")
    log(summary_lines(rows))
    for line in problems:
        log(line)
    return problems


def _ingest(entry: Entry, data: bytes | None, version: str, images: Path) -> dict:
    where = f"{entry.source}:{entry.path}"
    if data is None:
        raise CutoutError(f"missing file {where} (not in {entry.source} {version})")
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise CutoutError(
            f"changed file {where} (sha256 {actual[:12]}, manifest says {entry.sha256[:12]}; "
            "review the new picture and update the manifest)"
        )
    try:
        rgba = prepare(data)
    except CutoutError as err:
        raise CutoutError(f"rejected {where}: {err}") from err
    name = output_name(entry)
    target = images / name
    if not target.exists():  # names carry the sha256: an existing file is this very cut-out
        buffer = io.BytesIO()
        rgba.save(buffer, "PNG", optimize=True)
        write_atomic(target, buffer.getvalue())
    return {
        "file_name": f"images/{name}", "source": entry.source, "package_version": version,
        "original_path": entry.path, "licence": entry.licence, "credit": entry.credit, "category": entry.category,
        "mirror": entry.mirror, "width": rgba.width, "height": rgba.height, "sha256": entry.sha256,
    }  # fmt: skip


def _counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    return {
        key: dict(sorted(Counter(r[field] for r in rows).items()))
        for key, field in (("sources", "source"), ("categories", "category"), ("licences", "licence"))
    }


def summary_lines(rows: list[dict]) -> str:
    """Counts per source, per category and per (source, category), for the build log and ``list``."""
    lines = []
    for title, counts in _counts(rows).items():
        lines.append(f"{title}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    pairs = Counter((r["source"], r["category"]) for r in rows)
    lines.append("by source and category: " + ", ".join(f"{s}/{c} {n}" for (s, c), n in sorted(pairs.items())))
    return "\n".join(lines)


def card(rows: list[dict]) -> str:
    """README.md of the built folder: what the set is for (and not for), counts, every licence and credit."""
    counts = _counts(rows)
    lines = [
        "# ColorLab photographic cut-outs",
        "",
        f"{len(rows)} photographic cut-outs (RGBA with real transparency) from Debian packages, rebuilt with "
        "`python -m corpus.cutouts build`. **Compositing augmentation only**: `--composite_cutouts` pastes them "
        "onto training crops of corpus photos. They are never training photos on their own, never validation "
        "photos, and never part of the photo corpus.",
        "",
        "Sources: " + ", ".join(f"{k} ({n})" for k, n in counts["sources"].items()) + ".",
        "",
        "Categories: " + ", ".join(f"{k} ({n})" for k, n in counts["categories"].items()) + ".",
        "",
        "Licences: " + ", ".join(f"{k} ({n})" for k, n in counts["licences"].items()) + ".",
        "",
        f"Selection: {REVIEW_RULES}",
        "",
        "| file | source | category | original path | licence | credit |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["file_name"], f"{r['source']} {r['package_version']}", r["category"], r["original_path"],
                 r["licence"], r["credit"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = FlagParser(prog="python -m corpus.cutouts", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or refresh the cut-out folder")
    b.add_argument("--out", type=Path, required=True, help="output folder (e.g. data/cutouts)")
    b.add_argument("--cache_dir", type=Path, default=DEFAULT_CACHE, help="where downloaded packages are kept")
    b.add_argument("--manifest", type=Path, default=MANIFEST, help="allow-list of cut-outs (JSON lines)")
    b.add_argument("--offline", action="store_true", help="use only packages already in the cache")
    lst = sub.add_parser("list", help="summarise the manifest by source, category and licence")
    lst.add_argument("--manifest", type=Path, default=MANIFEST)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "list":
            entries = load_manifest(args.manifest)
            print(f"{len(entries)} cut-outs in {Path(args.manifest).name}")
            print(summary_lines([vars(e) for e in entries]))
            return 0
        problems = build(args.out, manifest=args.manifest, cache=PackageCache(args.cache_dir, offline=args.offline))
    except (CutoutError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
