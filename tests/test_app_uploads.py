"""Bad and unusual uploads in the app: the handler gets the file itself, so every bad kind is the CLI's sentence
(naming the user's file, never a server path); every mode the CLI accepts colorizes; size and pixel limits."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from app_support import launched, load_app, save_tiny_models
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from judge.ratings import RatingsStore
from models.imageio import ImageInputError, open_image
from space import app_logic as logic
from space.model_pool import ModelPool, read_config_file
from space.outputs import OutputFolder
from space.uploads import UploadReader


def _png_claiming_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims width x height (a decompression bomb that never allocates)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


BAD_FILES = {
    "empty.png": b"",
    "notes.png": b"shopping list: milk, eggs\n" * 20,
    "phone.heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
    "logo.svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
    "bomb.png": _png_claiming_size(30000, 30000),
    "cut.jpg": None,  # a truncated JPEG, made from a real photo below
}


def _write_bad(folder: Path, name: str, photo) -> Path:
    path = folder / name
    data = BAD_FILES[name]
    if data is None:
        buffer = io.BytesIO()
        photo("camera", 128).save(buffer, format="JPEG")
        data = buffer.getvalue()[:600]
    path.write_bytes(data)
    return path


def _cli_sentence(path: Path) -> str:
    """What the CLI says about this file (models.imageio, the reader it uses), with the path as the user typed it."""
    with pytest.raises(ImageInputError) as caught:
        open_image(path)
    return str(caught.value).replace(str(path), path.name)


@pytest.fixture
def ctx(tmp_path: Path):
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])))
    store = RatingsStore(tmp_path / "data", rate_limit=None)
    context = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), seed=0)
    yield context
    store.close()


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_every_bad_upload_gets_the_cli_sentence_in_colorize_and_arena(ctx, tmp_path: Path, photo, name: str) -> None:
    folder = tmp_path / "gradio-cache" / "0123abcd"
    folder.mkdir(parents=True)
    path = _write_bad(folder, name, photo)
    expected = _cli_sentence(path)
    for run in (
        lambda: logic.colorize(ctx, path, ["pix2pix"], working_size=64),
        lambda: logic.arena_round(ctx, path, voter="10.0.0.1"),
    ):
        with pytest.raises(ValueError) as caught:
            run()
        assert str(caught.value) == expected
        assert str(tmp_path) not in str(caught.value) and name in str(caught.value)


def test_heic_and_svg_are_named_for_what_they_are(tmp_path: Path, photo) -> None:
    assert "is a HEIC/HEIF photo" in _cli_sentence(_write_bad(tmp_path, "phone.heic", photo))
    assert "is an SVG drawing, not a photograph" in _cli_sentence(_write_bad(tmp_path, "logo.svg", photo))


def _unusual_modes(photo) -> dict[str, Image.Image]:
    rgb = photo("astronaut", 96)
    gray = np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0
    return {
        "cmyk.jpg": rgb.convert("CMYK"),
        "lab.tif": rgb.convert("LAB"),
        "float.tif": Image.fromarray(gray, "F"),
        "sixteen.png": Image.fromarray((gray * 65535).astype(np.uint16)),  # I;16
        "int.tif": Image.fromarray((gray * 255).astype(np.int32), "I"),  # 32-bit integers holding 8-bit values
    }


def test_colorize_and_arena_accept_every_mode_the_cli_accepts(ctx, tmp_path: Path, photo) -> None:
    expected_gray = np.asarray(photo("astronaut", 96).convert("L"), dtype=np.float64) / 255.0
    for name, image in _unusual_modes(photo).items():
        path = tmp_path / name
        image.save(path)
        outcome = logic.colorize(ctx, path, ["pix2pix", "unet"], working_size=64)
        assert [result.error for result in outcome.results] == ["", ""], name
        with Image.open(outcome.input_image) as before:
            assert before.size == image.size and before.mode == "RGB"
            shown = np.asarray(before.convert("L"), dtype=np.float64) / 255.0
            assert abs(shown.mean() - expected_gray.mean()) < 0.02, name  # the "before" side looks like the photo
        round_ = logic.arena_round(ctx, path, voter="10.0.0.1")
        assert round_.image_a.is_file() and round_.image_b.is_file()


def test_uploads_above_the_size_limit_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(bytes(2_000_001))
    with pytest.raises(ImageInputError, match=r"^big\.png is 2\.0 MB, above the 2 MB upload limit; upload a smaller"):
        UploadReader(max_bytes=2_000_000).read_bytes(path)


def test_pixels_above_the_app_limit_are_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming_size(8000, 8000))  # 64 MP, above the app's 50
    refused = r"^bomb\.png is 8000x8000 \(64 megapixels\), above the 50-megapixel"
    with pytest.raises(ImageInputError, match=refused), UploadReader().open(path):
        pass


def test_only_one_large_image_is_processed_at_a_time(tmp_path: Path, photo) -> None:
    reader = UploadReader(large_pixels=50 * 50)
    large, small = tmp_path / "large.png", tmp_path / "small.png"
    photo("camera", 100).save(large)
    photo("camera", 40).save(small)
    second_entered = threading.Event()

    def second() -> None:
        with reader.open(large):
            second_entered.set()

    with reader.open(large):
        worker = threading.Thread(target=second)
        worker.start()
        with reader.open(small) as upload:  # small images never wait
            assert upload.image.size == (40, 40)
        worker.join(timeout=0.5)
        assert worker.is_alive() and not second_entered.is_set()  # the second large one waits for the first
    worker.join()
    assert second_entered.is_set()


def test_app_limits_uploads_in_gradio_too(monkeypatch, tmp_path: Path) -> None:
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config, COLORLAB_MAX_UPLOAD_MB="5")
    assert app.launch_options()["max_file_size"] == 5_000_000
    app.CONTEXT.store.close()


def test_browser_api_shows_the_sentence_not_a_generic_error(monkeypatch, tmp_path: Path, photo) -> None:
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with launched(app) as url:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        for name in ("empty.png", "notes.png", "phone.heic", "bomb.png"):
            path = _write_bad(uploads, name, photo)
            with pytest.raises(AppError) as caught:
                client.predict(handle_file(str(path)), ["pix2pix"], 64, 1.0, api_name="/colorize")
            assert str(caught.value) == _cli_sentence(path)
            with pytest.raises(AppError) as caught:
                client.predict(handle_file(str(path)), False, api_name="/arena_next")
            assert str(caught.value) == _cli_sentence(path)
        cmyk = uploads / "cmyk.jpg"
        photo("astronaut", 96).convert("CMYK").save(cmyk)
        status, *_ = client.predict(handle_file(str(cmyk)), ["pix2pix"], 64, 1.0, api_name="/colorize")
        assert "96×96" in status
