"""models.batch: pipelined folder colorizing gives the same images as one-by-one colorizing, in order, errors kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.batch import colorize_pipelined
from models.pipeline import NetworkColorizer


def _save_png(image: Image.Image, target: Path) -> None:
    image.save(target, format="PNG")


@pytest.fixture
def photos(tmp_path, photo) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for index, (name, side) in enumerate([("astronaut", 90), ("coffee", 130), ("chelsea", 70), ("camera", 100)] * 2):
        path = folder / f"{index}_{name}.png"
        photo(name, side).save(path)
        paths.append(path)
    broken = folder / "3b_broken.jpg"
    broken.write_bytes(b"not a photo")
    paths.insert(3, broken)
    return paths


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_pipelined_outputs_equal_one_by_one_colorizing_in_order(tiny_model, photos, tmp_path, keep_aspect):
    colorizer = NetworkColorizer(tiny_model)
    out = tmp_path / "out"
    out.mkdir()
    jobs = [(path, out / f"{path.stem}.png") for path in photos]
    results = list(
        colorize_pipelined(colorizer, jobs, _save_png, batch_size=3, working_size=64, keep_aspect=keep_aspect)
    )
    assert [r.source for r in results] == photos  # input order, the broken file in its place
    failed = [r for r in results if r.error is not None]
    assert [r.source.name for r in failed] == ["3b_broken.jpg"]
    assert isinstance(failed[0].error, ValueError) and "Traceback" not in str(failed[0].error)
    for result in results:
        if result.error is None:
            expected = colorizer.colorize(result.source, working_size=64, keep_aspect=keep_aspect)
            assert np.array_equal(np.asarray(Image.open(result.target)), np.asarray(expected))


def test_bad_options_fail_before_any_photo_is_read(tiny_model, photos):
    colorizer = NetworkColorizer(tiny_model)
    jobs = [(photos[0], photos[0].with_suffix(".out.png"))]
    with pytest.raises(ValueError, match="batch_size"):
        list(colorize_pipelined(colorizer, jobs, _save_png, batch_size=0))
    with pytest.raises(ValueError, match="working_size"):
        list(colorize_pipelined(colorizer, jobs, _save_png, working_size=8))
    assert not photos[0].with_suffix(".out.png").exists()
