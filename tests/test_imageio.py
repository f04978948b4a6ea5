"""Bad and unusual inputs: each gets a correct colorization or one clear sentence (models.imageio + pipeline)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import lightness_of
from PIL import Image, ImageFile
from skimage.color import rgb2lab

from models.imageio import MAX_PIXELS, ImageInputError, image_to_tensor, open_image
from models.pipeline import Colorizer, NetworkColorizer

L_TOLERANCE = 0.5


@pytest.fixture
def colorizer(tiny_model) -> Colorizer:
    return NetworkColorizer(tiny_model)


def _colorize(colorizer: Colorizer, source) -> Image.Image:
    return colorizer.colorize(source, working_size=32)


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def _png_claiming_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR (with a valid CRC) claims width x height: a bomb that never allocates."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # bytes 8-11 chunk length, 12-15 "IHDR", 16-19 width, 20-23 height, 24-28 rest of IHDR, 29-32 CRC
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# --- one clear sentence ---------------------------------------------------------------------------


def test_zero_byte_file_is_reported(tmp_path, colorizer):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"empty\.jpg is empty \(0 bytes\)"):
        _colorize(colorizer, empty)
    with pytest.raises(ImageInputError, match="empty"):
        open_image(b"")


def test_truncated_jpeg_is_reported_not_grayed(tmp_path, photo, colorizer):
    data = _jpeg_bytes(photo("coffee", 160))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"cut\.jpg is truncated or corrupt.*re-export or re-download"):
        _colorize(colorizer, cut)


def test_text_file_named_png_is_reported(tmp_path, colorizer):
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels\n")
    with pytest.raises(ImageInputError, match=r"notes\.png is not an image PIL can read"):
        _colorize(colorizer, fake)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ImageInputError, match="does not exist"):
        open_image(tmp_path / "nowhere.png")


def test_decompression_bomb_fails_before_decoding(tmp_path, monkeypatch, colorizer):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming_size(20000, 20000))
    assert bomb.stat().st_size < 100  # the test itself never holds a 20000x20000 image

    def decoding_is_forbidden(self):
        raise AssertionError("the 400-megapixel image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoding_is_forbidden)
    with pytest.raises(ImageInputError, match=r"bomb\.png .*(too large|megapixel).*downscale it first"):
        _colorize(colorizer, bomb)
    with pytest.raises(ImageInputError, match="downscale it first"):
        open_image(bomb.read_bytes())


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("L", (300, 200)).save(path)
    with pytest.raises(ImageInputError, match=r"300x200 .*above the 0.059999-megapixel limit"):
        open_image(path, max_pixels=300 * 200 - 1)
    assert open_image(path, max_pixels=300 * 200).size == (300, 200)
    assert MAX_PIXELS >= 4000 * 3000  # a 12-megapixel camera photo is welcome


# --- a correct result -----------------------------------------------------------------------------


def test_one_pixel_image_is_colorized(colorizer):
    result = _colorize(colorizer, Image.new("L", (1, 1), 128))
    assert result.size == (1, 1)
    assert abs(lightness_of(result)[0, 0] - lightness_of(Image.new("L", (1, 1), 128))[0, 0]) < L_TOLERANCE


def test_animated_gif_uses_the_first_frame(tmp_path, colorizer):
    first = Image.new("L", (40, 30), 40)
    second = Image.new("L", (40, 30), 220)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    opened = open_image(path)
    assert np.asarray(opened.convert("L")).max() == 40
    result = _colorize(colorizer, path)
    assert result.size == (40, 30)
    np.testing.assert_allclose(lightness_of(result), lightness_of(first), atol=L_TOLERANCE)


def test_16_bit_png_keeps_its_full_range(tmp_path, colorizer):
    ramp = np.linspace(0, 65535, 48 * 32).reshape(32, 48).astype(np.uint16)
    ramp[:8] = np.linspace(0, 300, 48).astype(np.uint16)  # deep shadows: far below 8-bit's first step
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    result = _colorize(colorizer, path)
    gray = np.repeat((ramp / 65535.0)[..., None], 3, axis=2)
    np.testing.assert_allclose(lightness_of(result), rgb2lab(gray)[..., 0], atol=L_TOLERANCE)


def test_dark_16_bit_png_stays_dark(tmp_path, colorizer):
    # A 16-bit file whose brightest pixel is 199/65535 is nearly black, whatever its peak value.
    shadows = (np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint16)
    path = tmp_path / "shadows.png"
    Image.fromarray(shadows).save(path)
    result = _colorize(colorizer, path)
    assert lightness_of(result).max() < 5.0


def test_cmyk_jpeg_is_colorized_from_its_lightness(tmp_path, photo, colorizer):
    path = tmp_path / "print.jpg"
    path.write_bytes(_jpeg_bytes(photo("chelsea", 120).convert("CMYK")))
    opened = Image.open(path)
    assert opened.mode == "CMYK"
    result = _colorize(colorizer, path)
    assert result.mode == "RGB" and result.size == opened.size
    np.testing.assert_allclose(lightness_of(result), lightness_of(opened.convert("RGB")), atol=L_TOLERANCE)


def test_palette_png_with_transparency_keeps_its_alpha(tmp_path, colorizer):
    palette_image = Image.new("P", (32, 24), 1)
    palette_image.putpalette([0, 0, 0, 200, 200, 200] + [0] * (256 * 3 - 6))
    palette_image.paste(0, (0, 0, 16, 24))  # left half uses index 0, the transparent one
    path = tmp_path / "logo.png"
    palette_image.save(path, transparency=0)
    result = _colorize(colorizer, path)
    assert result.mode == "RGBA" and result.size == (32, 24)
    alpha = np.asarray(result.getchannel("A"))
    assert (alpha[:, :16] == 0).all() and (alpha[:, 16:] == 255).all()
    np.testing.assert_allclose(lightness_of(result)[:, 16:], lightness_of(Image.new("L", (16, 24), 200)), atol=0.5)


def test_exif_rotated_jpeg_is_upright(tmp_path, colorizer):
    stored = Image.new("L", (60, 40), 30)
    stored.paste(230, (0, 0, 60, 10))  # bright band along the stored top edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the band ends up on the right
    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_bytes(stored, exif=exif.tobytes()))
    upright = open_image(path)
    assert upright.size == (40, 60)
    result = _colorize(colorizer, path)
    assert result.size == (40, 60)
    lightness = lightness_of(result)
    assert lightness[:, -8:].mean() > 80 and lightness[:, :20].mean() < 20


def test_bytes_and_pil_inputs_match_path_input(tmp_path, photo, colorizer):
    path = tmp_path / "cat.png"
    photo("chelsea", 96).save(path)
    from_path = _colorize(colorizer, path)
    assert np.array_equal(np.asarray(_colorize(colorizer, path.read_bytes())), np.asarray(from_path))
    assert np.array_equal(np.asarray(_colorize(colorizer, Image.open(path))), np.asarray(from_path))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "I", "F"])
def test_image_to_tensor_handles_every_mode(photo, mode):
    base = photo("coffee", 48)
    image = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257) if mode == "I;16" else base
    image = image if mode == "I;16" else base.convert(mode)
    rgb, alpha = image_to_tensor(image)
    assert rgb.shape == (3, base.height, base.width)
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
    assert (alpha is not None) == (mode in ("LA", "RGBA"))
