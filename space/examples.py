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

from judge.ratings import image_sha256

# (file in skimage/data, caption shown under the thumbnail); "B&W" marks the genuine black-and-white photographs.
# Short on purpose: a gallery caption longer than its thumbnail is cut off.
EXAMPLE_FILES = (
    ("camera.png", "Cameraman · B&W"),
    ("coins.png", "Coins · B&W"),
    ("moon.png", "Moon · B&W"),
    ("astronaut.png", "Astronaut"),
    ("chelsea.png", "Chelsea the cat"),
    ("coffee.png", "Coffee"),
    ("rocket.jpg", "Rocket launch"),
)
EXAMPLES_NOTE = "B&W: a real black-and-white photograph; the others are colour photos shown gray"


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
