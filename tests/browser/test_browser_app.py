"""A real browser (Debian's chromium through Playwright) drives the app: upload, colorize, vote, leaderboard.

    .venv/bin/python -m pytest tests/browser -q -m browser

Chromium is never downloaded: install it with `apt-get install chromium`. Without it the test skips,
unless COLORLAB_REQUIRE_BROWSER=1 (set by CI), which makes a missing chromium a failure. Screenshots
go to the test's tmp dir, or to COLORLAB_ARTIFACTS_DIR when set (CI keeps them there).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from app_support import launched, load_app, save_tiny_models

# Offline and quiet: no first-run, sync, component updates or QUIC probes (see docs/architecture.md).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    reason = "Debian's chromium is not installed (apt-get install chromium); the browser test needs it"
    if os.environ.get("COLORLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and COLORLAB_REQUIRE_BROWSER=1 says it must run.")
    pytest.skip(f"{reason}; set COLORLAB_REQUIRE_BROWSER=1 to make this a failure.")


def _artifacts_dir(tmp_path: Path) -> Path:
    """Where screenshots go: COLORLAB_ARTIFACTS_DIR when set, else the test's tmp dir (nothing in the repository)."""
    folder = Path(os.environ.get("COLORLAB_ARTIFACTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.browser
@pytest.mark.slow
def test_upload_colorize_vote_and_see_the_leaderboard(monkeypatch, tmp_path: Path, photo) -> None:
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config)
    upload = tmp_path / "street.png"
    photo("camera").resize((384, 288)).save(upload)
    artifacts = _artifacts_dir(tmp_path)

    with launched(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)  # assertions wait 5 s by default: too short on a busy CPU
            page.goto(url)

            # Colorize: upload, keep only pix2pix chosen, run; its before/after slider appears.
            page.locator("#colorize-photo input[type=file]").set_input_files(str(upload))
            expect(page.locator("#colorize-photo img")).to_be_visible()
            page.get_by_label("unet").uncheck()
            page.locator("#colorize-button").click()
            expect(page.locator("#colorize-status")).to_contain_text("384×288")
            slider = page.locator("#slider-0")
            expect(slider).to_be_visible()
            expect(slider.locator("img")).to_have_count(2)
            expect(page.locator("#result-1")).to_be_hidden()  # unet was not chosen
            expect(page.get_by_role("button", name="Download full-resolution PNG").first).to_be_visible()

            # Arena: a pair appears anonymously, the vote reveals both names.
            expect(page.locator(".pending")).to_have_count(0)
            page.screenshot(path=str(artifacts / "app-colorize.png"), full_page=True)
            page.get_by_role("tab", name="Arena").click()
            page.locator("#arena-next").click()
            expect(page.locator("#arena-a img")).to_be_visible()
            expect(page.locator("#arena-b img")).to_be_visible()
            expect(page.locator("#arena-prompt")).to_contain_text("Which colorization")
            expect(page.locator("#arena-prompt")).not_to_contain_text("pix2pix")
            page.locator("#vote-a").click()
            reveal = page.locator("#arena-reveal")
            expect(reveal).to_contain_text("A was")
            expect(page.locator("#vote-b")).to_be_disabled()
            winner = reveal.inner_text().split("A was ")[1].split(",")[0].strip()
            assert winner in {"pix2pix", "unet"}
            page.screenshot(path=str(artifacts / "app-arena.png"), full_page=True)

            # Leaderboard: the vote is counted and the winner leads.
            page.get_by_role("tab", name="Leaderboard").click()
            expect(page.locator("#board-summary")).to_contain_text("1 vote")
            table = page.locator("#board-table")
            expect(table).to_be_visible()
            expect(table).to_contain_text(f"{winner} (provisional)")
            expect(page.locator(".pending")).to_have_count(0)  # the refresh has finished drawing
            page.screenshot(path=str(artifacts / "app-leaderboard.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(artifacts / "app-failure.png"), full_page=True)  # what the browser showed
            raise
        finally:
            browser.close()
