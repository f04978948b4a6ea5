"""Example photographs for the Colorize and Arena tabs: real photos shipped inside scikit-image (no download).

    examples = prepare_examples(folder)   # writes grayscale PNGs into folder, returns [Example]

Three are real black-and-white photographs (camera, coins, moon); the others are colour photos
turned gray, so people judge a colorization without seeing the original colours. The files are
copied into a folder the app owns (a temp folder), which Gradio may serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from space.ratings import image_sha256

# (file in skimage/data, caption); grayscale files are genuine black-and-white photographs.
EXAMPLE_FILES = (
    ("camera.png", "Cameraman (black-and-white photograph)"),
    ("coins.png", "Coins (black-and-white photograph)"),
    ("moon.png", "Moon surface (black-and-white photograph)"),
    ("astronaut.png", "Astronaut (colour photo, shown gray)"),
    ("chelsea.png", "Chelsea the cat (colour photo, shown gray)"),
    ("coffee.png", "Coffee (colour photo, shown gray)"),
    ("rocket.jpg", "Rocket launch (colour photo, shown gray)"),
)


@dataclass(frozen=True)
class Example:
    name: str
    caption: str
    path: Path
    sha256: str


def _skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).resolve().parent / "data"


def prepare_examples(folder: Path) -> list[Example]:
    """Write the example photos (as grayscale PNGs) into `folder`; missing source files are skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    source_dir = _skimage_data_dir()
    examples = []
    for file_name, caption in EXAMPLE_FILES:
        source = source_dir / file_name
        if not source.is_file():  # a trimmed scikit-image install: fewer examples, not a crash
            continue
        target = folder / f"{Path(file_name).stem}.png"
        with Image.open(source) as image:
            image.convert("L").save(target, format="PNG")
        data = target.read_bytes()
        examples.append(Example(Path(file_name).stem, caption, target, image_sha256(data)))
    return examples
