"""python docs/tools/results_figure.py   (rebuilds docs/images/results.png, the picture at the top of README.md)

Real results of the bundled colorizers on held-out photos: one row per validation photo of the corpus, columns
input (gray) | every model listed in space/models.yaml, in its order | the original colour photo. Each photo is
centre-cropped to a square and resized to 256 px (as `judge.evaluate` does), colorized by each model at its
native working size, and shown as tiles that fit the picture into --width px (GitHub shows a README about 830 px
wide; 800 px and three photos keep the PNG near 550 KB with four models). Re-run it after the bundled models change:
it reads the model list, so nothing here names a model. It prints the photo credits for the README's caption.

    python docs/tools/results_figure.py --photos scratch_grand-canyon gcompris-qt-data_japan --width 1000
    python -m corpus.photos build --out data/corpus   # first, if data/corpus is missing
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from PIL import Image, ImageDraw, ImageFont, ImageOps  # noqa: E402

from models.hub import load_colorizer  # noqa: E402
from space.arena import gray_version  # noqa: E402
from space.model_pool import read_config_file, resolve_source  # noqa: E402

# Validation photos by file-name prefix (source_subject; the corpus adds a content hash): a landscape, an animal and
# a building, so the picture shows sky, rock, fur and stone (the kitten is a failure of every model), not a best case.
DEFAULT_PHOTOS = ("scratch_grand-canyon", "gcompris-qt-data_kitten", "gcompris-qt-data_schwerinpalace")
EVAL_SIZE = 256  # judge.evaluate's centre-crop size
HEADER, PAD = 24, 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "space" / "models.yaml", help="models YAML")
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus", help="the photo corpus")
    parser.add_argument("--split", default="validation", help="corpus split the photos come from")
    parser.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS), help="file-name prefixes, one per row")
    parser.add_argument("--width", type=int, default=800, help="width of the picture in pixels (sets the tile size)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "results.png", help="PNG to write")
    return parser.parse_args(argv)


def find_photos(folder: Path, prefixes: list[str]) -> list[Path]:
    """The photo whose file name starts with each prefix; a clear error naming what is missing."""
    if not folder.is_dir():
        raise SystemExit(f"{folder} does not exist; build it first: python -m corpus.photos build --out data/corpus")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    found = []
    for prefix in prefixes:
        matches = [p for p in files if p.name.startswith(prefix + "_") or p.stem == prefix]
        if not matches:
            raise SystemExit(f"No photo named {prefix}_* in {folder}; pick others with --photos (see its file names).")
        found.append(matches[0])
    return found


def centre_square(path: Path, size: int = EVAL_SIZE) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (size, size), Image.Resampling.LANCZOS)


def credits(folder: Path, photos: list[Path]) -> list[str]:
    """'file: credit (licence)' for each photo, from the corpus metadata (the credit without its source link)."""
    records = {}
    metadata = folder / "metadata.jsonl"
    if metadata.is_file():
        for line in metadata.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["file_name"]] = record
    lines = []
    for photo in photos:
        record = records.get(photo.name, {})
        credit = record.get("credit", "unknown").split(";")[0]
        lines.append(f"{photo.name}: {credit} ({record.get('licence', 'unknown licence')})")
    return lines


def build_figure(rows: list[list[Image.Image]], labels: list[str], tile: int) -> Image.Image:
    columns = len(labels)
    canvas = Image.new("RGB", (columns * (tile + PAD) + PAD, HEADER + len(rows) * (tile + PAD)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for column, label in enumerate(labels):
        draw.text((PAD + column * (tile + PAD) + 2, 4), label, fill="black", font=font)
    for row, images in enumerate(rows):
        for column, image in enumerate(images):
            thumb = image.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
            canvas.paste(thumb, (PAD + column * (tile + PAD), HEADER + row * (tile + PAD)))
    return canvas


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    folder = args.corpus / args.split
    photos = find_photos(folder, args.photos)
    specs = read_config_file(args.models)
    labels = ["input (gray)", *(spec.name for spec in specs), "original"]
    tile = (args.width - PAD) // len(labels) - PAD
    if tile < 32:
        raise SystemExit(f"--width {args.width} leaves {tile}-px tiles for {len(labels)} columns; give a wider one.")
    colorizers = [
        load_colorizer(resolve_source(spec.source, REPO_ROOT), revision=spec.revision, name=spec.name)
        for spec in specs
    ]
    rows = []
    for photo in photos:
        truth = centre_square(photo)
        rows.append([gray_version(truth), *(colorizer.colorize(truth) for colorizer in colorizers), truth])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build_figure(rows, labels, tile).save(args.out, format="PNG", optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB): {len(photos)} photos x {len(specs)} models")
    print("photo credits:\n" + "\n".join(f"  {line}" for line in credits(folder, photos)))


if __name__ == "__main__":
    main()
