"""README.md's promises: its Python-API example runs as written, and the picture at its top exists and stays small.

.venv/bin/python -m pytest tests/test_readme.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from app_support import REPO_ROOT
from PIL import Image

README = REPO_ROOT / "README.md"
PICTURE_BUDGET_BYTES = 600 * 1024  # the README's first screen; rebuilt by docs/tools/results_figure.py


def _section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"(?ms)^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text)
    assert match, f"README.md has no '## {name}' section"
    return match.group(1)


def _run_example(section: str, photo_size: tuple[int, int], monkeypatch, tmp_path: Path, photo) -> dict:
    """Run the one python block of a README section as a reader in a clone would, in a tmp folder that has the
    example's relative paths (weights/..., old_photo.jpg); returns the block's namespace."""
    blocks = re.findall(r"```python\n(.*?)```", _section(section), flags=re.S)
    assert len(blocks) == 1, f"the {section} section should hold one python block"
    (tmp_path / "weights").symlink_to(REPO_ROOT / "weights", target_is_directory=True)
    photo("camera").resize(photo_size).save(tmp_path / "old_photo.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], f"README.md ({section})", "exec"), namespace)
    return namespace


def test_the_python_api_example_runs_as_written(monkeypatch, tmp_path: Path, photo) -> None:
    namespace = _run_example("Python API", (300, 200), monkeypatch, tmp_path, photo)

    with Image.open(tmp_path / "old_photo_color.png") as saved:
        assert saved.size == (300, 200) and saved.mode == "RGB"
        rgb = np.asarray(saved, dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 1.0  # coloured, not gray (a trained model, not a stub)
    assert namespace["vivid"].size == (300, 200)
    assert [image.size for image in namespace["colors"]] == [(300, 200), (200, 300)]


def test_the_picture_at_the_top_exists_and_stays_small() -> None:
    head = README.read_text(encoding="utf-8").split("\n## ", 1)[0]  # before the first section: the first screen
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", head)
    assert links == ["docs/images/results.png"]
    picture = REPO_ROOT / links[0]
    assert picture.stat().st_size <= PICTURE_BUDGET_BYTES
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width <= 1000
    assert "python docs/tools/results_figure.py" in head  # how to rebuild it


def test_the_colour_hints_example_runs_and_the_point_takes_its_colour(monkeypatch, tmp_path: Path, photo) -> None:
    namespace = _run_example("Colour hints", (640, 480), monkeypatch, tmp_path, photo)

    color = np.asarray(namespace["color"].convert("RGB"), dtype=np.int16)
    assert color.shape == (480, 640, 3)
    red, green, blue = color[228:233, 410:415].reshape(-1, 3).mean(axis=0)
    assert red > green + 20 and red > blue + 20  # the point asked for red, and the bundled hint model gives red there
