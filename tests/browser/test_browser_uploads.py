"""A real browser uploads bad files: the toast shows ColorLab's sentence naming the file, not Gradio's "Error".

.venv/bin/python -m pytest tests/browser -q -m browser   (needs Debian's chromium; see test_browser_app.py)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import launched, load_app, save_tiny_models
from test_browser_app import CHROMIUM_FLAGS, TIMEOUT_MS, _artifacts_dir, _chromium

BAD_UPLOADS = {
    "notes.png": (b"shopping list: milk, eggs\n" * 20, "notes.png is not an image PIL can read"),
    "phone.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1" + bytes(200), "phone.heic is a HEIC/HEIF photo"),
}


@pytest.mark.browser
@pytest.mark.slow
def test_bad_uploads_show_the_sentence_in_the_browser(monkeypatch, tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config)
    with launched(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)
            for name, (data, sentence) in BAD_UPLOADS.items():
                path = tmp_path / name
                path.write_bytes(data)
                page.reload()
                page.locator("#colorize-photo input[type=file]").set_input_files(str(path))
                page.locator("#colorize-button").click()
                toast = page.get_by_text(sentence).first
                expect(toast).to_be_visible()
                text = toast.inner_text()
                assert text.startswith(sentence) and "/tmp/" not in text and "gradio" not in text  # no server path
        except Exception:
            page.screenshot(path=str(_artifacts_dir(tmp_path) / "app-bad-upload-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
