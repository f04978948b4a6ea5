"""The bundled default colorizers (weights/): size budgets, strict loading, and real colour on real photos.

These are the models `make demo` serves on a machine with no Hub access, so they must exist, load
with the production loader, keep the photo's size and lightness, and colour better than leaving
the photo gray. The photos here (scikit-image's astronaut, coffee, chelsea) are part of the open
corpus's *training* split; held-out quality is the validation table in README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import color, data

from models.hub import load_colorizer, load_model

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
BUNDLED = ("colour_global", "colour_l1", "pix2pix", "unet_l1", "autoencoder")
PHOTOS = ("astronaut", "coffee", "chelsea")
MB = 1024 * 1024


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_every_default_colorizer_is_bundled_within_the_size_budget():
    sizes = {}
    for name in BUNDLED:
        folder = WEIGHTS / name
        assert (folder / "model.safetensors").is_file(), f"{folder} is missing: make demo would serve no {name}"
        sizes[name] = (folder / "model.safetensors").stat().st_size
        assert sizes[name] <= 30 * MB, f"{name} weights are {sizes[name] / MB:.1f} MB, over the 30 MB budget"
    total = sum(_folder_bytes(folder) for folder in WEIGHTS.iterdir() if folder.is_dir())  # the hint model too
    assert total <= 80 * MB, f"bundled weights take {total / MB:.1f} MB, over the 80 MB budget"


@pytest.mark.parametrize("name", BUNDLED)
def test_model_card_records_how_the_weights_were_made(name):
    card = (WEIGHTS / name / "README.md").read_text(encoding="utf-8")
    assert "accelerate launch trainer/train.py --config" in card, "the card must give the reproducing command"
    assert "grayscale baseline" in card, "the card must show validation metrics next to the grayscale baseline"
    assert (WEIGHTS / name / "samples.png").is_file()
    config = json.loads((WEIGHTS / name / "config.json").read_text())
    assert "architecture" in config
    block = config["colorlab"]  # the facts the app, CLI and evaluation read: native size, training, dtype
    assert block["native_working_size"] in range(block["trained_resolution"][0], block["trained_resolution"][1] + 1)
    assert block["weights_dtype"] == "float16"
    assert block["training"]["metrics"]["grayscale baseline"]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_weights_survive_a_load_save_round_trip(name, tmp_path):
    # from_pretrained -> save_pretrained must keep the card, the config block and the fp16 size (not double it)
    model = load_model(WEIGHTS / name)
    model.save_pretrained(tmp_path / name)
    assert (tmp_path / name / "README.md").read_text() == (WEIGHTS / name / "README.md").read_text()
    assert json.loads((tmp_path / name / "config.json").read_text()) == json.loads(
        (WEIGHTS / name / "config.json").read_text()
    )
    size = (WEIGHTS / name / "model.safetensors").stat().st_size
    assert abs((tmp_path / name / "model.safetensors").stat().st_size - size) < 1024


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: getattr(data, name)() for name in PHOTOS}


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_colorizer_beats_grayscale_on_real_photos(name, photos):
    colorizer = load_colorizer(WEIGHTS / name)
    model_errors, gray_errors = {}, {}
    for photo_name, rgb in photos.items():
        output = np.asarray(colorizer.colorize(Image.fromarray(rgb)))
        assert output.shape == rgb.shape
        truth = color.rgb2lab(rgb)
        predicted = color.rgb2lab(output)
        assert np.abs(predicted[..., 0] - truth[..., 0]).max() < 0.6, "output lightness must equal the input's"
        gray = truth.copy()
        gray[..., 1:] = 0
        model_errors[photo_name] = float(color.deltaE_ciede2000(predicted, truth).mean())
        gray_errors[photo_name] = float(color.deltaE_ciede2000(gray, truth).mean())
    model_mean = np.mean(list(model_errors.values()))
    gray_mean = np.mean(list(gray_errors.values()))
    assert model_mean < gray_mean, (
        f"{name}: mean CIEDE2000 {model_mean:.2f} is not below the grayscale baseline's {gray_mean:.2f} "
        f"(per photo: {model_errors} vs {gray_errors})"
    )
