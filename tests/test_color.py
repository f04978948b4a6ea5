"""models.color against scikit-image: Lab conversion, normalisation, round trips, gamut handling, gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import COLOR_PHOTOS
from skimage import color as skcolor

from models.color import (
    denormalize_ab,
    denormalize_l,
    fit_lab_to_gamut,
    lab_to_rgb,
    lab_to_srgb8,
    lightness_from_rgb,
    lightness_from_srgb8,
    model_space_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
    rgb_to_model_space,
    srgb8_lightness_table,
)

TOLERANCE = 1e-3  # L and ab units, as the issue asks


def _chw(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(dtype)


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).double().numpy()


def _skimage_lab2rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # scikit-image warns when it clips negative Z, which is the case under test
        warnings.simplefilter("ignore")
        return skcolor.lab2rgb(lab)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage_on_random_colours(dtype):
    rgb = np.random.default_rng(0).random((64, 64, 3))
    rgb[0, :8] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.02, 0.03, 0.01], [1, 1, 0], [0, 1, 1]]
    ours = _hwc(rgb_to_lab(_chw(rgb, dtype)))
    np.testing.assert_allclose(ours, skcolor.rgb2lab(rgb), atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", COLOR_PHOTOS)
def test_rgb_to_lab_matches_skimage_on_real_photos(photo, name):
    rgb = np.asarray(photo(name)) / 255.0
    ours = _hwc(rgb_to_lab(_chw(rgb)))
    np.testing.assert_allclose(ours, skcolor.rgb2lab(rgb), atol=TOLERANCE, rtol=0)


def test_lab_to_rgb_matches_skimage_including_clipping():
    rng = np.random.default_rng(1)
    # Uniform over the Lab box: most samples are outside sRGB, which exercises the clipping.
    lab = np.stack(
        [rng.uniform(0, 100, (48, 48)), rng.uniform(-110, 110, (48, 48)), rng.uniform(-110, 110, (48, 48))], -1
    )
    ours = _hwc(lab_to_rgb(_chw(lab, torch.float64)))
    np.testing.assert_allclose(ours, _skimage_lab2rgb(lab), atol=1e-6, rtol=0)
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_out_of_gamut_lab_is_clipped_unless_asked_not_to():
    lab = torch.tensor([[[60.0]], [[100.0]], [[-100.0]]])  # far more chroma than sRGB can show
    unclipped = lab_to_rgb(lab, clip=False)
    assert unclipped.min() < 0 or unclipped.max() > 1
    clipped = lab_to_rgb(lab)
    assert torch.equal(clipped, unclipped.clamp(0, 1))


def test_every_8bit_colour_survives_the_round_trip_within_one_level():
    levels = torch.arange(0, 256, 3, dtype=torch.float32)  # 86^3 = 636k colours, the cube's corners included
    levels = torch.cat([levels, torch.tensor([255.0])])
    grid = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)
    back = lab_to_rgb(rgb_to_lab(grid / 255.0))
    quantised = (back * 255.0).round()
    assert (quantised - grid).abs().max().item() <= 1.0


def test_real_photo_round_trip_is_exact_after_quantisation(photo):
    rgb = torch.from_numpy(np.array(photo("astronaut"))).permute(2, 0, 1).float()
    back = lab_to_rgb(rgb_to_lab(rgb / 255.0))
    assert (back * 255.0).round().sub(rgb).abs().max().item() <= 1.0


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7), (2, 4, 3, 5, 7), (0, 3, 5, 7)])
def test_any_batch_shape_converts_each_image_independently(shape):
    rgb = torch.rand(shape, dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    flat = rgb.reshape(-1, 3, 5, 7)
    # every image of the batch, not only the first (the bug of pix2pix's reference lab2rgb)
    for index in range(flat.shape[0]):
        torch.testing.assert_close(lab.reshape(-1, 3, 5, 7)[index], rgb_to_lab(flat[index]))
    torch.testing.assert_close(lab_to_rgb(lab), rgb, atol=1e-9, rtol=0)


def test_wrong_channel_layout_is_rejected_with_a_hint():
    with pytest.raises(ValueError, match=r"3 channels.*permute"):
        rgb_to_lab(torch.rand(8, 8, 3))
    with pytest.raises(ValueError, match="3 channels"):
        lab_to_rgb(torch.rand(2, 8, 8))


def test_normalisation_maps_lab_ranges_to_unit_interval():
    lightness = torch.tensor([0.0, 50.0, 100.0])
    torch.testing.assert_close(normalize_l(lightness), torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(normalize_ab(torch.tensor([-110.0, 0.0, 110.0])), torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(denormalize_l(normalize_l(lightness)), lightness)
    torch.testing.assert_close(denormalize_ab(normalize_ab(lightness)), lightness)


def test_model_space_covers_srgb_within_unit_range_and_inverts():
    corners = torch.tensor(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=torch.float32
    ).T.reshape(3, 8, 1)
    l_norm, ab_norm = rgb_to_model_space(corners)
    assert l_norm.shape == (1, 8, 1) and ab_norm.shape == (2, 8, 1)
    assert l_norm.min() >= -1 and l_norm.max() <= 1
    assert ab_norm.abs().max() <= 1.0  # the most saturated sRGB colours still fit ab / 110
    torch.testing.assert_close(model_space_to_rgb(l_norm, ab_norm), corners, atol=1e-4, rtol=0)


def test_lightness_only_paths_agree_with_full_conversion():
    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(lightness_from_rgb(rgb), rgb_to_lab(rgb)[:, :1])
    gray_levels = np.repeat((np.arange(256) / 255.0)[:, None, None], 3, axis=2)  # (256, 1, 3)
    expected = skcolor.rgb2lab(gray_levels)[:, 0, 0]
    np.testing.assert_allclose(srgb8_lightness_table(torch.float64).numpy(), expected, atol=TOLERANCE, rtol=0)


def test_conversions_are_differentiable_with_finite_gradients_everywhere():
    # Exact black/white hit the pow/where branches whose other side would give inf/NaN gradients.
    rgb = torch.cat([torch.rand(1, 3, 6, 6, dtype=torch.float64), torch.zeros(1, 3, 6, 6), torch.ones(1, 3, 6, 6)])
    rgb.requires_grad_(True)
    lab = rgb_to_lab(rgb)
    (lab_to_rgb(lab, clip=False).sum() + lab.sum()).backward()
    assert torch.isfinite(rgb.grad).all()
    interior = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (interior,))
    lab_point = rgb_to_lab(interior).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (lab_point,))


def test_fit_lab_to_gamut_keeps_lightness_and_in_gamut_colours():
    rng = np.random.default_rng(2)
    lab = torch.from_numpy(
        np.stack([rng.uniform(0, 100, (32, 32)), rng.uniform(-110, 110, (32, 32)), rng.uniform(-110, 110, (32, 32))])
    ).float()
    in_gamut = rgb_to_lab(torch.rand(3, 32, 32))
    fitted = fit_lab_to_gamut(torch.cat([lab, in_gamut], dim=-1))
    assert torch.equal(fitted[0], torch.cat([lab, in_gamut], dim=-1)[0])  # L never changes
    rgb = lab_to_rgb(fitted, clip=False)
    assert rgb.min() >= -2e-3 and rgb.max() <= 1 + 2e-3  # inside sRGB up to the bisection tolerance
    torch.testing.assert_close(fitted[..., 32:], in_gamut)  # colours already in gamut are untouched
    chroma_before = lab[1:].norm(dim=0)
    chroma_after = fitted[1:, :, :32].norm(dim=0)
    assert (chroma_after <= chroma_before + 1e-4).all()  # only ever pulled toward gray


def test_fit_lab_to_gamut_keeps_nearly_all_the_chroma_it_can():
    lab = torch.cat([torch.rand(1, 48, 48) * 100, (torch.rand(2, 48, 48) - 0.5) * 220])
    fitted = fit_lab_to_gamut(lab)
    changed = (fitted != lab).any(dim=0)
    kept = fitted[1:].norm(dim=0)[changed] / lab[1:].norm(dim=0)[changed]
    # 4/256 more of the original chroma (a few bisection steps) leaves the gamut: the search is not timid
    bumped = torch.cat([fitted[:1, changed], fitted[1:, changed] * (kept + 4 / 256) / kept]).unsqueeze(-1)
    outside = lab_to_rgb(bumped, clip=False)
    assert ((outside < -1e-3) | (outside > 1 + 1e-3)).any(dim=0).float().mean() > 0.98


def test_8bit_lightness_lookup_matches_skimage(photo):
    rgb = np.asarray(photo("coffee"))
    np.testing.assert_allclose(lightness_from_srgb8(rgb).numpy(), skcolor.rgb2lab(rgb)[..., 0], atol=TOLERANCE, rtol=0)
    gray = np.asarray(photo("camera"))
    expected = skcolor.rgb2lab(np.repeat(gray[..., None], 3, axis=2))[..., 0]
    np.testing.assert_allclose(lightness_from_srgb8(gray).numpy(), expected, atol=TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="uint8"):
        lightness_from_srgb8(rgb.astype(np.float32))


def test_srgb8_output_path_matches_the_exact_conversion_and_keeps_lightness():
    # 2100 px wide: several row bands, the last one partial
    lab = torch.cat([torch.rand(1, 70, 2100) * 100, (torch.rand(2, 70, 2100) - 0.5) * 160])
    codes = lab_to_srgb8(lab)
    assert codes.shape == (70, 2100, 3) and codes.dtype == torch.uint8
    exact = (lab_to_rgb(fit_lab_to_gamut(lab)) * 255 + 0.5).floor().to(torch.int16).permute(1, 2, 0)
    difference = (codes.to(torch.int16) - exact).abs()
    assert difference.max() <= 1 and difference.float().mean() < 0.01  # lookup-table rounding, rarely off by one
    lightness = skcolor.rgb2lab(codes.numpy() / 255.0)[..., 0]
    np.testing.assert_allclose(lightness, lab[0].numpy(), atol=0.5, rtol=0)  # out-of-gamut chroma did not move L
    unfitted = lab_to_srgb8(lab, fit_gamut=False)
    assert not torch.equal(unfitted, codes)  # plain clipping would have (and changes L)
    with pytest.raises(ValueError, match="one image"):
        lab_to_srgb8(lab.unsqueeze(0))


# --- the full-resolution output path against its previous implementation -----------------------------------------


def _compare_with_reference(lab: torch.Tensor, **kwargs) -> torch.Tensor:
    """lab_to_srgb8 vs the previous implementation: never more than one 8-bit level apart, rarely that, and as
    close to the exact float conversion as the previous one was."""
    from srgb8_reference import reference_lab_to_srgb8

    fit_gamut = kwargs.get("fit_gamut", True)
    codes = lab_to_srgb8(lab, **kwargs).to(torch.int16)
    reference = reference_lab_to_srgb8(lab, fit_gamut=fit_gamut).to(torch.int16)
    difference = (codes - reference).abs()
    assert difference.max() <= 1
    assert difference.bool().float().mean() < 0.005  # both tables round a few values near a level's edge apart
    rgb = lab_to_rgb(fit_lab_to_gamut(lab) if fit_gamut else lab).permute(1, 2, 0)
    exact = (rgb.double() * 255 + 0.5).floor().to(torch.int16)
    off, reference_off = (codes - exact).abs(), (reference - exact).abs()
    assert off.max() <= 1
    assert off.bool().float().mean() <= reference_off.bool().float().mean() + 0.002
    return codes.to(torch.uint8)


def _wide_lab(height: int, width: int, chroma: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.cat(
        [
            torch.rand(1, height, width, generator=generator) * 100,
            (torch.rand(2, height, width, generator=generator) - 0.5) * 2 * chroma,
        ]
    )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chroma", [6.0, 110.0])  # ~4% out of gamut (fitted at the end) / 83% (fitted per band)
def test_srgb8_matches_the_previous_implementation_on_random_colours(threads, chroma):
    lab = _wide_lab(90, 2100, chroma, seed=3)  # several row bands, the last one partial
    lab[:, 0, :6] = torch.tensor(
        [[0.0, 0, 0], [100, 0, 0], [50, 127, -128], [0, 80, 80], [100, -128, 127], [3, 0, 0]]
    ).T
    _compare_with_reference(lab, threads=threads)
    _compare_with_reference(lab, threads=threads, fit_gamut=False)


@pytest.mark.parametrize("name", COLOR_PHOTOS)
@pytest.mark.parametrize("saturation", [1.0, 2.5])  # the photo's own colours / pushed far out of gamut
def test_srgb8_matches_the_previous_implementation_on_real_photos(photo, name, saturation):
    rgb = torch.from_numpy(np.array(photo(name))).permute(2, 0, 1).float() / 255.0
    lab = rgb_to_lab(rgb)
    lab[1:] *= saturation
    codes = _compare_with_reference(lab, threads=2)
    if saturation == 1.0:  # in-gamut colours come back as the photo's own 8-bit values, up to one level
        assert (codes.permute(2, 0, 1).float() - rgb * 255).abs().max() <= 1.0


def test_srgb8_gives_the_same_bytes_on_one_thread_and_on_two():
    lab = _wide_lab(300, 1000, 6.0, seed=4)  # bands of 131 rows: the first fits its own pixels, the others defer
    lab[1:, :100] *= 10
    assert torch.equal(lab_to_srgb8(lab, threads=1), lab_to_srgb8(lab, threads=2))


def test_srgb8_handles_empty_images():
    assert lab_to_srgb8(torch.zeros(3, 0, 5)).shape == (0, 5, 3)
    assert lab_to_srgb8(torch.zeros(3, 4, 0)).shape == (4, 0, 3)


def test_srgb8_rejects_nan_with_a_sentence():
    lab = _wide_lab(4, 8, 50.0, seed=5)
    lab[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lab_to_srgb8(lab)
