"""Colorizer pipeline: full-resolution output that keeps the input's size and L, every PIL mode, batch API,
determinism, no side effects, and guided upsampling that beats bilinear at edges on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import COLOR_PHOTOS, GRAY_PHOTOS, lightness_of
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.filters import sobel

from models.color import rgb_to_lab
from models.pipeline import NetworkColorizer, prepare_image
from models.registry import create_model
from models.upsample import bilinear_upsample, guided_upsample

L_TOLERANCE = 0.5  # CIELAB L units; 8-bit output quantisation alone moves L by up to ~0.3


@pytest.fixture
def colorizer(tiny_model) -> NetworkColorizer:
    return NetworkColorizer(tiny_model)


def _constant_ab_model(a_norm: float, b_norm: float) -> torch.nn.Module:
    """simple_cnn_tiny whose head ignores its input and predicts the given normalised ab everywhere."""
    model = create_model("simple_cnn_tiny")
    head = model.head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.atanh(torch.tensor([a_norm, b_norm])))
    return model


def _ab_of(image: Image.Image) -> np.ndarray:
    return rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)[..., 1:]


@pytest.mark.parametrize("name", COLOR_PHOTOS + GRAY_PHOTOS)
def test_real_photo_keeps_size_and_lightness(photo, colorizer, name):
    image = photo(name)  # full size: 300-600 px, larger than the working size
    result = colorizer.colorize(image, working_size=64)
    assert result.size == image.size and result.mode == "RGB"
    np.testing.assert_allclose(lightness_of(result), lightness_of(image), atol=L_TOLERANCE, rtol=0)


def _as_mode(image: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "I", "F"])
def test_every_pil_mode_keeps_size_lightness_and_alpha(photo, colorizer, mode):
    image = _as_mode(photo("coffee", 96), mode)
    assert image.mode == mode
    result = colorizer.colorize(image, working_size=32)
    assert result.size == image.size
    assert result.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB")
    if result.mode == "RGBA":
        assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(image.getchannel("A")))
    high_bit_depth = mode in ("I;16", "I", "F")
    expected = lightness_of(photo("coffee", 96).convert("L") if high_bit_depth else image.convert("RGB"))
    np.testing.assert_allclose(lightness_of(result), expected, atol=L_TOLERANCE, rtol=0)


def test_colour_input_is_recolorized_from_its_own_lightness(photo):
    image = photo("astronaut", 128)
    gray_predictor = NetworkColorizer(_constant_ab_model(0.0, 0.0))
    result = gray_predictor.colorize(image, working_size=32)
    # the photo's own colours never leak through: a model that predicts no colour gives a gray image
    assert np.abs(_ab_of(result)).max() < 1.0
    np.testing.assert_allclose(lightness_of(result), lightness_of(image), atol=L_TOLERANCE, rtol=0)


def test_predicted_colour_reaches_the_output(photo):
    reddish = NetworkColorizer(_constant_ab_model(0.25, 0.1))  # a = 27.5, b = 11 in Lab units
    ab = _ab_of(reddish.colorize(photo("camera", 96), working_size=32))
    lightness = lightness_of(photo("camera", 96))
    midtones = (lightness > 25) & (lightness < 75)  # where that colour fits in sRGB without being pulled to gray
    np.testing.assert_allclose(ab[midtones].mean(axis=0), [27.5, 11.0], atol=1.5)


def test_predict_ab_can_be_overridden(photo, tiny_model):
    class BlueColorizer(NetworkColorizer):
        def predict_ab(self, l_norm: torch.Tensor, **hooks) -> torch.Tensor:
            ab = torch.zeros(l_norm.shape[0], 2, *l_norm.shape[-2:])
            ab[:, 1] = -0.2
            return ab

    ab = _ab_of(BlueColorizer(tiny_model).colorize(photo("camera", 64), working_size=32))
    assert np.median(ab[..., 1]) < -15


def test_saturation_scales_chroma(photo, tiny_model):
    colorizer = NetworkColorizer(_constant_ab_model(0.2, -0.15))
    image = photo("chelsea", 96)
    chroma = {
        s: np.hypot(*_ab_of(colorizer.colorize(image, saturation=s, working_size=32)).T).mean() for s in (0, 0.5, 1)
    }
    assert chroma[0] < 0.5
    assert chroma[0.5] < chroma[1]
    with pytest.raises(ValueError, match="saturation must be >= 0"):
        colorizer.colorize(image, saturation=-1)
    with pytest.raises(ValueError, match="saturation must be >= 0 and finite"):  # inf would overflow ab to NaN
        colorizer.colorize(image, saturation=float("inf"))


def test_batch_api_matches_one_by_one(photo, colorizer):
    images = [photo("astronaut", 80), photo("camera", 64).convert("L"), photo("coffee", 100), photo("chelsea", 50)]
    batched = colorizer.colorize_batch(images, working_size=32, batch_size=3)
    assert [im.size for im in batched] == [im.size for im in images]
    for single_input, from_batch in zip(images, batched, strict=True):
        single = np.asarray(colorizer.colorize(single_input, working_size=32), dtype=int)
        assert np.abs(single - np.asarray(from_batch, dtype=int)).max() <= 1


def test_deterministic_in_eval_mode_even_from_a_training_model(photo, tiny_model):
    tiny_model.train()  # dropout on: the Colorizer must switch it off
    colorizer = NetworkColorizer(tiny_model)
    assert not tiny_model.training
    image = photo("coffee", 96)
    first = np.asarray(colorizer.colorize(image, working_size=32))
    assert np.array_equal(first, np.asarray(colorizer.colorize(image, working_size=32)))


def test_colorizing_writes_no_files(photo, colorizer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "input.png"
    photo("chelsea", 64).save(source)
    colorizer.colorize(source, working_size=32)
    colorizer.colorize_batch([source.read_bytes()], working_size=32)
    assert [p.name for p in tmp_path.iterdir()] == ["input.png"]


def test_working_size_is_rounded_to_the_model_multiple_and_checked(photo, colorizer):
    assert colorizer.working_side(50) == 48  # pix2pix_tiny needs multiples of 16
    assert colorizer.working_side(20) == 16
    image = photo("chelsea", 70)
    assert colorizer.colorize(image, working_size=50).size == image.size
    with pytest.raises(ValueError, match="working_size must be at least 16"):
        colorizer.colorize(image, working_size=8)


def test_images_smaller_than_the_working_size_keep_their_size(colorizer):
    tiny = Image.fromarray(np.arange(60, dtype=np.uint8).reshape(6, 10) * 4)
    result = colorizer.colorize(tiny, working_size=64)
    assert result.size == (10, 6)
    np.testing.assert_allclose(lightness_of(result), lightness_of(tiny), atol=L_TOLERANCE, rtol=0)


def test_prepared_lightness_matches_full_lab_conversion(photo):
    for image in (photo("coffee", 120), photo("camera", 120)):
        prepared = prepare_image(image)
        assert prepared.size == image.size
        np.testing.assert_allclose(prepared.lightness[0, 0].numpy(), lightness_of(image), atol=1e-3, rtol=0)


# --- guided upsampling --------------------------------------------------------------------------


def _edge_ciede2000(name: str, photo) -> tuple[float, float]:
    """Mean CIEDE2000 on edge pixels after shrinking a photo's TRUE ab to 64 px and enlarging it back."""
    rgb = torch.from_numpy(np.asarray(photo(name), dtype=np.float64) / 255.0).permute(2, 0, 1)
    lab = rgb_to_lab(rgb).unsqueeze(0).float()
    lightness, ab = lab[:, :1], lab[:, 1:]
    height, width = lightness.shape[-2:]
    small = (64, round(64 * width / height))
    lightness_small = F.interpolate(lightness, size=small, mode="area")
    ab_small = F.interpolate(ab, size=small, mode="area")
    edges = sobel(lightness[0, 0].numpy())
    edge_mask = edges > np.percentile(edges, 90)
    reference = lab[0].permute(1, 2, 0).numpy()

    def edge_error(ab_full: torch.Tensor) -> float:
        estimate = torch.cat([lightness, ab_full], dim=1)[0].permute(1, 2, 0).numpy()
        return float(deltaE_ciede2000(reference, estimate)[edge_mask].mean())

    guided = guided_upsample(lightness_small / 100, ab_small, lightness / 100)
    return edge_error(guided), edge_error(bilinear_upsample(ab_small, (height, width)))


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_guided_upsampling_beats_bilinear_at_edges(photo, name):
    guided, bilinear = _edge_ciede2000(name, photo)
    assert guided < bilinear, f"guided {guided:.3f} vs bilinear {bilinear:.3f} mean CIEDE2000 at edges"


def test_guided_upsampling_keeps_flat_colour_and_checks_shapes():
    colour = torch.tensor([20.0, -30.0]).view(1, 2, 1, 1)
    flat_ab = colour.expand(1, 2, 16, 16)
    guide_full = torch.rand(1, 1, 64, 64)
    guide_small = F.interpolate(guide_full, size=(16, 16), mode="area")
    result = guided_upsample(guide_small, flat_ab, guide_full)
    assert result.shape == (1, 2, 64, 64)
    torch.testing.assert_close(result, colour.expand(1, 2, 64, 64), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="must share height and width"):
        guided_upsample(torch.rand(1, 1, 8, 8), flat_ab, guide_full)
