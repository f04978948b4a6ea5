"""End to end: app.py launched on 127.0.0.1 and driven with gradio_client (colorize, arena vote, leaderboard)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from app_support import launched, load_app, save_tiny_models
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image


@pytest.fixture
def client(monkeypatch, tmp_path: Path):
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config)
    with launched(app) as url:
        yield Client(url, verbose=False, download_files=str(tmp_path / "downloads"))


def test_colorize_returns_full_resolution_sliders_and_downloads(client: Client, tmp_path: Path, photo) -> None:
    upload = tmp_path / "family.jpg"
    photo("camera").resize((300, 220)).save(upload)
    status, pix_header, pix_slider, pix_png, _unet_header, unet_slider, unet_png = client.predict(
        handle_file(str(upload)), ["pix2pix"], 128, 1.0, api_name="/colorize"
    )
    assert "300×220" in status
    assert pix_header.startswith("**pix2pix** · ") and " s at working size 128" in pix_header
    before, after = pix_slider
    for path in (before, after, pix_png):
        with Image.open(path) as image:
            assert image.size == (300, 220) and image.format == "PNG"
    assert Path(pix_png).read_bytes() == Path(after).read_bytes()
    assert Path(pix_png).name == "family_pix2pix.png"
    assert unet_slider is None and unet_png is None  # not chosen: hidden and empty


def test_colorize_refuses_a_model_that_is_not_served(client: Client, tmp_path: Path, photo) -> None:
    upload = tmp_path / "x.png"
    photo("camera", 64).save(upload)
    with pytest.raises(AppError):
        client.predict(handle_file(str(upload)), ["../models/pix2pix_tiny"], 128, 1.0, api_name="/colorize")


def test_a_vote_is_revealed_once_and_shows_on_the_leaderboard(client: Client) -> None:
    summary, *_ = client.predict(api_name="/leaderboard")
    assert "**0 votes**" in summary
    gray, image_a, image_b, *_, prompt, _reveal = client.predict(None, False, api_name="/arena_next")
    assert Path(gray).is_file() and Path(image_a).is_file() and Path(image_b).is_file()
    with Image.open(gray) as shown, Image.open(image_a) as side_a:
        assert shown.mode == "L" and shown.size == side_a.size  # the input, beside A and B
    assert "pix2pix" not in prompt and "unet" not in prompt
    reveal = client.predict(4, None, api_name="/vote_a")
    winner = reveal.split("A was **")[1].split("**")[0]
    assert winner in {"pix2pix", "unet"}
    with pytest.raises(AppError):  # the round's token was used up: no second vote
        client.predict(None, None, api_name="/vote_b")
    summary, _plot, table, _win_rates = client.predict(api_name="/leaderboard")
    assert "**1 vote**" in summary
    first = dict(zip(table["headers"], table["data"][0], strict=True))
    assert first["model"] == f"{winner} (provisional)"
    assert first["wins / losses / ties / both bad"] == "1 / 0 / 0 / 0"
    assert first["MOS (1-5)"] == "4.00"


def test_voter_is_the_network_address_not_the_client_chosen_session(monkeypatch, tmp_path: Path) -> None:
    # A script that invents a new session hash every round must still count as one voter (rate limit).
    app = load_app(monkeypatch, tmp_path, save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"]))

    def request(session: str, address: str, forwarded: str = "") -> SimpleNamespace:
        headers = {"x-forwarded-for": forwarded} if forwarded else {}
        return SimpleNamespace(session_hash=session, client=SimpleNamespace(host=address), headers=headers)

    assert app._voter(app.CONTEXT, request("s1", "10.0.0.5")) == app._voter(app.CONTEXT, request("s2", "10.0.0.5"))
    assert app._voter(app.CONTEXT, request("s1", "10.0.0.5")) != app._voter(app.CONTEXT, request("s1", "10.0.0.6"))
    # no trusted proxy configured: a forwarded header is the client's own words and is ignored
    assert app._voter(app.CONTEXT, request("s1", "10.9.9.9", "1.2.3.4, 5.6.7.8")) == "10.9.9.9"
    assert app._session(request("s1", "10.0.0.5")) != app._session(request("s2", "10.0.0.5"))
    app.CONTEXT.store.close()


def test_the_api_documents_ratings_as_optional_integers_and_refuses_strings(client: Client) -> None:
    parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/vote_a"]["parameters"]
    ratings = {p["parameter_name"]: p for p in parameters}
    for name in ("rating_a", "rating_b"):
        assert ratings[name]["type"]["type"] == "integer" and ratings[name]["python_type"]["type"] == "int"
        assert (ratings[name]["type"]["minimum"], ratings[name]["type"]["maximum"]) == (1, 5)
        assert ratings[name]["parameter_has_default"] and ratings[name]["parameter_default"] is None
    client.predict(None, False, api_name="/arena_next")
    with pytest.raises(AppError, match=r"A rating must be an integer from 1 to 5, or None, not '4'\."):
        client.predict("4", None, api_name="/vote_a")
    reveal = client.predict(rating_b=5, api_name="/vote_a")  # the round is still open; rating_a may be left out
    assert "A was" in reveal
