"""The app's layout in a real browser at a wide (1400 px) and a narrow (800 px) window, with screenshots.

    .venv/bin/python -m pytest tests/browser/test_browser_layout.py -q   (needs Debian's chromium)

Wide: three models' results share one row, the gray input stands beside A and B in the arena. Narrow: two results
to a row, nothing wider than the window. Both: example thumbnails carry whole captions, Gradio's "Use via API" link is
visible, and the Models tab shows a card's sample grid as an image under its "Samples" heading. Screenshots go to the
test's tmp dir (or COLORLAB_ARTIFACTS_DIR).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import launched, load_app, save_tiny_models
from PIL import Image
from test_browser_app import CHROMIUM_FLAGS, TIMEOUT_MS, _artifacts_dir, _chromium

from space.examples import EXAMPLE_FILES

MODELS = ["pix2pix_tiny", "unet_tiny", "autoencoder_tiny"]


def _add_sample_grid(folder: Path) -> None:
    """A card with a "Samples" section and a relative image link, as the trainer writes them."""
    Image.new("RGB", (240, 80), (200, 120, 40)).save(folder / "samples.png")
    card = (folder / "README.md").read_text(encoding="utf-8")
    samples = "\n## Samples\ngray input | prediction | ground truth\n\n![samples](samples.png)\n\n## After the grid\n"
    (folder / "README.md").write_text(card + samples, encoding="utf-8")


def _boxes(page, selectors: list[str]) -> list[dict]:
    return [page.locator(selector).bounding_box() for selector in selectors]


def _overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 800])
def test_results_side_by_side_arena_input_api_link_and_sample_grid(monkeypatch, tmp_path: Path, width: int) -> None:
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    config = save_tiny_models(tmp_path / "models", MODELS)
    _add_sample_grid(tmp_path / "models" / "pix2pix_tiny")
    app = load_app(monkeypatch, tmp_path, config)
    shots = _artifacts_dir(tmp_path)
    results = [f"#result-{index}" for index in range(len(MODELS))]

    with launched(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        try:
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)

            # The footer's API documentation link is visible (it used to be hidden by CSS).
            expect(page.get_by_text("Use via API")).to_be_visible()

            # Example thumbnails carry their captions; a click loads the photo.
            examples = page.locator("#colorize-examples")
            for _, caption in EXAMPLE_FILES:
                label = examples.get_by_text(caption, exact=True)
                expect(label).to_be_visible()
                assert label.evaluate("el => el.scrollWidth <= el.clientWidth"), f"caption {caption!r} is cut off"
                box = label.bounding_box()
                assert box["x"] + box["width"] <= width, f"example {caption!r} lies outside the window"
            # every example is shown at once, without a scrollbar inside the gallery
            assert examples.locator(".grid-wrap").evaluate("el => el.scrollHeight <= el.clientHeight + 1")
            examples.locator("img").first.click()
            expect(page.locator("#colorize-photo img")).to_be_visible()

            # Colorize with the three models: their before/after sliders appear side by side (wide) or wrap.
            page.locator("#colorize-button").click()
            expect(page.locator("#colorize-status")).to_contain_text("Colorized a")
            for selector in results:
                expect(page.locator(f"{selector} img")).to_have_count(2)
            expect(page.locator(".pending")).to_have_count(0)
            page.screenshot(path=str(shots / f"colorize-{width}.png"), full_page=True)
            boxes = _boxes(page, results)
            if width == 1400:
                assert len({round(box["y"]) for box in boxes}) == 1, f"three results should share a row: {boxes}"
                assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
                assert all(box["width"] >= 320 for box in boxes)
            else:  # two to a row, and the third keeps their size rather than filling the width
                assert round(boxes[0]["y"]) == round(boxes[1]["y"]) < round(boxes[2]["y"]), boxes
                assert abs(boxes[2]["width"] - boxes[0]["width"]) <= 2, boxes
            assert all(box["x"] >= 0 and box["x"] + box["width"] <= width for box in boxes), boxes
            assert _overflow(page) <= 0

            # Arena: the gray input beside A and B.
            page.get_by_role("tab", name="Arena").click()
            page.locator("#arena-next").click()
            arena = ["#arena-input", "#arena-a", "#arena-b"]
            for selector in arena:
                expect(page.locator(f"{selector} img")).to_be_visible()
            expect(page.locator(".pending")).to_have_count(0)
            page.screenshot(path=str(shots / f"arena-{width}.png"), full_page=True)
            boxes = _boxes(page, arena)
            if width == 1400:
                assert len({round(box["y"]) for box in boxes}) == 1, f"input, A and B should share a row: {boxes}"
                assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
            assert _overflow(page) <= 0

            # Models: the sample grid is an image under the card's "Samples" heading, before its next section.
            page.get_by_role("tab", name="Models").click()
            grid = page.locator(".card-image img").first
            expect(grid).to_be_visible()
            assert grid.evaluate("img => img.complete && img.naturalWidth") == 240
            heading = page.get_by_role("heading", name="Samples", exact=True)
            after = page.get_by_role("heading", name="After the grid", exact=True)
            expect(heading).to_be_visible()
            assert heading.bounding_box()["y"] < grid.bounding_box()["y"] < after.bounding_box()["y"]
            page.screenshot(path=str(shots / f"models-{width}.png"), full_page=True)
            assert _overflow(page) <= 0
        except Exception:
            page.screenshot(path=str(shots / f"layout-failure-{width}.png"), full_page=True)
            raise
        finally:
            browser.close()
