"""The model card's widget example: a small grayscale photo and this model's colouring of it, kept in the folder.

    python -m models.widget_example --model weights/colour_l1      # add (or refresh) the example of a saved model
    entry = write_widget_example(colorizer, folder)                  # what the trainer does before saving

The Hub shows a model's `widget:` examples (an input image `src`, its `output` image, an `example_title`) on the
model page. The files are relative to the model folder, so they travel with it to the Hub and the card never
points outside the repository. The photo is scikit-image's "Chelsea the cat" (CC0, shipped with scikit-image,
so no download), turned gray and shrunk to WIDGET_SIDE px: the two JPEGs add about 20 KB to a model folder.
The entry goes into the trainer's `card_data` ("widget_example"); `models.model_card.widget_examples` renders it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PIL import Image

from models.colorizer import Colorizer
from models.flags import FlagParser

WIDGET_INPUT = "example_gray.jpg"
WIDGET_OUTPUT = "example_colorized.jpg"
WIDGET_SIDE = 256  # the long side of the example: enough to judge the colour, small enough for the weights budget
WIDGET_QUALITY = 85
WIDGET_TITLE = "Chelsea the cat (grayscale)"
WIDGET_PHOTO = "chelsea.png"  # in scikit-image's data folder; CC0 by Stefan van der Walt


def example_photo() -> Image.Image:
    """The example photo, gray, its long side WIDGET_SIDE px."""
    import skimage  # a dependency of the package; imported here because only saving a card needs it

    path = Path(skimage.__file__).resolve().parent / "data" / WIDGET_PHOTO
    if not path.is_file():
        raise ValueError(f"{path} is missing (a trimmed scikit-image install); reinstall scikit-image.")
    with Image.open(path) as photo:
        gray = photo.convert("L")
    gray.thumbnail((WIDGET_SIDE, WIDGET_SIDE), Image.Resampling.LANCZOS)
    return gray


def write_widget_example(colorizer: Colorizer | None, folder: str | Path) -> dict[str, str]:
    """Write the gray example and `colorizer`'s colouring of it (at its native working size) into `folder`;
    return the card_data entry naming them. Without a colorizer (a diffusion model, whose sampling is too slow
    to run while saving) only the input is written, and the Hub's widget colours it on request."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gray = example_photo()
    gray.save(folder / WIDGET_INPUT, format="JPEG", quality=WIDGET_QUALITY, optimize=True)
    entry = {"src": WIDGET_INPUT, "title": WIDGET_TITLE}
    if colorizer is not None:
        colour = colorizer.colorize(gray.convert("RGB"))
        colour.convert("RGB").save(folder / WIDGET_OUTPUT, format="JPEG", quality=WIDGET_QUALITY, optimize=True)
        entry["output"] = WIDGET_OUTPUT
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = FlagParser(prog="python -m models.widget_example", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="A saved network folder whose card gets the widget example.")
    args = parser.parse_args(argv)
    from models.hub import load_model, save_model_atomically  # the top of the stack: only when run as a command
    from models.pipeline import NetworkColorizer

    try:
        model = load_model(args.model)
        entry: dict[str, Any] = write_widget_example(NetworkColorizer(model), args.model)
        model.card_data["widget_example"] = entry
        save_model_atomically(model, args.model)  # the weights keep their stored dtype; config and card updated
    except (OSError, ValueError) as error:
        print(f"error: could not update {args.model} ({error}).", file=sys.stderr)
        return 2
    print(f"{args.model}: widget example {WIDGET_INPUT} -> {WIDGET_OUTPUT} written to the card.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
