"""A real browser places a colour point: pick a colour, click the photo, colorize; the hint model's result
has that colour at that place, and the automatic model's caption says it did not use the point.

    .venv/bin/python -m pytest tests/browser/test_browser_hints.py -q -m browser

It needs a trained hint model, the bundled weights/colour_hints (a random tiny network follows no point), and
skips with the reason while that folder is absent. COLORLAB_TEST_HINT_MODEL names another hint model folder
instead (e.g. a training run's outputs/colour_hints/best), for trying one before it is bundled.
Chromium: see test_browser_app.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from app_support import REPO_ROOT, launched, load_app, save_tiny_models
from PIL import Image
from skimage import color
from test_browser_app import CHROMIUM_FLAGS, TIMEOUT_MS, _artifacts_dir, _chromium

from models.hint_map import hint_ab
from models.hints import Hint
from space.hint_state import point_radius

HINT_MODEL_ENV = "COLORLAB_TEST_HINT_MODEL"
# The cameraman's sky (a real black-and-white photo) at sunset: "this is orange", a colour no automatic model gives a
# sky, at a flat, light place (so the colour there answers the point, not an edge).
PHOTO_SIZE = (384, 288)
POINT = (300, 40)
SUNSET = "#d8703a"
MAX_CIEDE2000 = 10.0  # "close to the hint" (the evaluation's bar on the validation photos is 5 at hinted points)


def _hint_model() -> Path:
    folder = Path(os.environ.get(HINT_MODEL_ENV) or REPO_ROOT / "weights" / "colour_hints")
    if not (folder / "model.safetensors").is_file():
        pytest.skip(
            f"{folder} holds no trained hint model yet; "
            f"set {HINT_MODEL_ENV} to a hint model folder to run this test before then."
        )
    return folder


def _target_lab(photo: Path) -> np.ndarray:
    """The colour the point asks for at the photo's own lightness there (what models.hint_map gives the network)."""
    lightness = color.rgb2lab(np.asarray(Image.open(photo).convert("RGB")) / 255.0)[..., 0]
    x, y = POINT
    half = round(point_radius(PHOTO_SIZE))
    patch = float(lightness[y - half : y + half + 1, x - half : x + half + 1].mean())
    rgb = tuple(int(SUNSET[k : k + 2], 16) for k in (1, 3, 5))
    a, b = hint_ab(Hint(x=x, y=y, rgb=rgb, radius=point_radius(PHOTO_SIZE)), patch)
    return np.array([patch, a, b])


def _lab_at_point(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == PHOTO_SIZE
        lab = color.rgb2lab(np.asarray(image.convert("RGB")) / 255.0)
    x, y = POINT
    half = round(point_radius(PHOTO_SIZE))
    return lab[y - half : y + half + 1, x - half : x + half + 1].reshape(-1, 3).mean(axis=0)


@pytest.mark.browser
@pytest.mark.slow
def test_a_clicked_colour_point_colours_the_hint_models_result(monkeypatch, tmp_path: Path, photo) -> None:
    folder = _hint_model()
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny"])
    listed = yaml.safe_load(config.read_text(encoding="utf-8"))
    listed["models"].append({"name": "colour_hints", "source": str(folder)})  # last, as in space/models.yaml
    config.write_text(yaml.safe_dump(listed), encoding="utf-8")
    app = load_app(monkeypatch, tmp_path, config)
    assert app.CONTEXT.pool.names() == ["pix2pix", "colour_hints"], app.CONTEXT.pool.notice_markdown()
    upload = tmp_path / "cameraman.png"
    photo("camera").resize(PHOTO_SIZE).save(upload)
    artifacts = _artifacts_dir(tmp_path)

    with launched(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        try:
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)
            page.locator("#colorize-photo input[type=file]").set_input_files(str(upload))
            shown = page.locator("#colorize-photo img")
            expect(shown).to_be_visible()
            page.get_by_label("colour_hints").uncheck()  # placing a point ticks the model that follows points

            # Pick the colour: the picker's dialog takes a hex code.
            page.locator("#hint-colour .dialog-button").click()
            hex_input = page.locator("#hint-colour input[type=text]")
            hex_input.fill(SUNSET)
            hex_input.press("Enter")
            page.locator("#hint-help").click()  # close the dialog
            expect(page.locator("#hint-colour .dialog-button")).to_have_css("background-color", "rgb(216, 112, 58)")

            # Click the photo where the sky is: the pixel's place on the screen, as the shown image is scaled.
            x, y = POINT
            where = shown.evaluate(
                """(img, [x, y]) => {
                    const box = img.getBoundingClientRect();
                    const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight, 1);
                    const left = box.left + (box.width - img.naturalWidth * scale) / 2;
                    const top = box.top + (box.height - img.naturalHeight * scale) / 2;
                    return [left + (x + 0.5) * scale, top + (y + 0.5) * scale];
                }""",
                [x, y],
            )
            page.mouse.click(*where)
            point = page.locator("#hint-points li")
            expect(point).to_have_count(1)
            expect(point).to_have_attribute("data-colour", SUNSET)
            assert abs(float(point.get_attribute("data-x")) - x) <= 1
            assert abs(float(point.get_attribute("data-y")) - y) <= 1
            expect(page.get_by_label("colour_hints")).to_be_checked()

            page.locator("#colorize-button").click()
            expect(page.locator("#colorize-status")).to_contain_text("with 1 colour point")
            hinted, automatic = page.locator("#result-1"), page.locator("#result-0")
            expect(hinted).to_contain_text("with your 1 colour point")
            expect(automatic).to_contain_text("automatic: this model does not take hints")
            expect(hinted.locator("img")).to_have_count(2)
            first, second = hinted.bounding_box(), automatic.bounding_box()
            assert (first["y"], first["x"]) < (second["y"], second["x"])  # the hint model is shown first
            page.screenshot(path=str(artifacts / "app-hints.png"), full_page=True)

            target = _target_lab(upload)
            after = hinted.locator("img").nth(1).get_attribute("src")
            got = _lab_at_point(page.request.get(after).body())
            distance = float(color.deltaE_ciede2000(target, got))
            assert distance <= MAX_CIEDE2000, f"Lab {got.round(1)} at the point, the hint asks {target.round(1)}"

            # Without the point the same model colours the sky as it sees fit: the orange came from the point.
            page.locator("#hint-undo").click()
            expect(page.locator("#hint-points")).to_contain_text("No colour points yet")
            page.locator("#colorize-button").click()
            expect(hinted.locator("img").nth(1)).not_to_have_attribute("src", after)
            expect(hinted).not_to_contain_text("colour point")
            expect(automatic).not_to_contain_text("automatic")
            plain = _lab_at_point(page.request.get(hinted.locator("img").nth(1).get_attribute("src")).body())
            assert float(color.deltaE_ciede2000(target, plain)) > MAX_CIEDE2000, "the point made no difference"
        except Exception:
            page.screenshot(path=str(artifacts / "app-hints-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
