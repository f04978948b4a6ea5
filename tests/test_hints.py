"""Colour hints: the Hint type and its file, the hint map at the working size, hint inputs on every network,
the contract's refusal by models that do not take hints, and a tiny hint model that learns to follow a point."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from models.base import HINT_CHANNELS
from models.color import AB_SCALE, lab_to_rgb, rgb_to_lab
from models.colorize import main as colorize_main
from models.hint_map import encode_hints, hint_ab, with_hint_input
from models.hint_sampling import hint_count, paint_hints, sample_hint_map
from models.hints import MAX_HINTS, Hint, HintError, hint_from_dict, hint_to_dict, load_hints_file
from models.pipeline import NetworkColorizer
from models.registry import create_model


def _flat_lightness(height: int, width: int, value: float = 50.0) -> torch.Tensor:
    return torch.full((1, 1, height, width), value)


# --- the Hint type and its file -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": 1, "y": 2}, "exactly one colour"),
        ({"x": 1, "y": 2, "rgb": (1, 2, 3), "lab": (50, 0, 0)}, "exactly one colour"),
        ({"x": 1, "y": 2, "rgb": (256, 0, 0)}, "0 to 255"),
        ({"x": 1, "y": 2, "rgb": "#12345"}, "#rrggbb"),
        ({"x": 1, "y": 2, "lab": (120, 0, 0)}, "outside CIELAB"),
        ({"x": float("nan"), "y": 2, "rgb": (1, 2, 3)}, "finite number"),
        ({"x": 1, "y": 2, "rgb": (1, 2, 3), "radius": -1}, "0 or more"),
        ({"x": True, "y": 2, "rgb": (1, 2, 3)}, "finite number"),
    ],
)
def test_a_malformed_hint_is_refused_with_a_sentence(kwargs, message):
    with pytest.raises(HintError, match=message):
        Hint(**kwargs)


def test_hex_and_list_colours_are_read_and_a_hint_round_trips_through_json():
    assert Hint(x=3, y=4, rgb="#C81E28").rgb == (200, 30, 40)
    hint = Hint(x=3.5, y=4, lab=[60, 20, -10], radius=2)
    assert hint_from_dict(json.loads(json.dumps(hint_to_dict(hint)))) == hint


def test_hints_file_problems_are_sentences(tmp_path):
    good = tmp_path / "hints.json"
    good.write_text(json.dumps([{"x": 1, "y": 2, "rgb": [200, 30, 40]}, {"x": 5, "y": 6, "lab": [50, 0, 40]}]))
    assert [h.rgb for h in load_hints_file(good)] == [(200, 30, 40), None]
    cases = {
        "missing.json": (None, "does not exist"),
        "broken.json": ("[{", "not readable JSON"),
        "object.json": ('{"x": 1}', "JSON list"),
        "unknown.json": ('[{"x": 1, "y": 2, "rgb": [1, 2, 3], "colour": "red"}]', "unknown key"),
        "noposition.json": ('[{"rgb": [1, 2, 3]}]', '"x" and "y"'),
        "badcolour.json": ('[{"x": 1, "y": 2, "rgb": [1, 2]}]', "hint 1 of"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(HintError, match=message):
            load_hints_file(path)


# --- the hint map -----------------------------------------------------------------------------------------------
def test_a_hint_lands_at_its_scaled_position_with_its_colour_and_mask():
    lightness = _flat_lightness(200, 400)  # a 400x200 photo squashed into a 50x100 (h x w) working image
    hint_map = encode_hints([Hint(x=200, y=100, lab=(50, 30, -20))], lightness, (50, 100))
    assert hint_map.shape == (1, HINT_CHANNELS, 50, 100)
    rows, columns = torch.nonzero(hint_map[0, 2], as_tuple=True)
    assert rows.tolist() == [25] and columns.tolist() == [50]  # radius 0: one working pixel
    assert hint_map[0, 0, 25, 50] == pytest.approx(30 / AB_SCALE)
    assert hint_map[0, 1, 25, 50] == pytest.approx(-20 / AB_SCALE)
    assert float(hint_map[0, :2].abs().sum()) == pytest.approx((30 + 20) / AB_SCALE)  # nothing outside the patch


def test_the_radius_scales_to_the_working_size_and_is_clamped_at_the_border():
    lightness = _flat_lightness(400, 400)
    small = encode_hints([Hint(x=200, y=200, lab=(50, 10, 10), radius=4)], lightness, (100, 100))
    assert int(small[0, 2].sum()) == 3 * 3  # radius 4 full-res pixels = 1 working pixel: a 3x3 patch
    huge = encode_hints([Hint(x=200, y=200, lab=(50, 10, 10), radius=400)], lightness, (100, 100))
    assert int(huge[0, 2].sum()) == 7 * 7  # clamped to the largest patch training used
    corner = encode_hints([Hint(x=0, y=0, lab=(50, 10, 10), radius=8)], lightness, (100, 100))
    assert int(corner[0, 2].sum()) == 3 * 3  # a 5x5 patch cut by the corner
    with pytest.raises(HintError, match="outside the 400x400 photo"):
        encode_hints([Hint(x=400, y=10, lab=(50, 0, 0))], lightness, (100, 100))
    with pytest.raises(HintError, match=f"at most {MAX_HINTS}"):
        encode_hints([Hint(x=1, y=1, lab=(50, 0, 0))] * (MAX_HINTS + 1), lightness, (100, 100))


def test_an_rgb_hint_keeps_its_hue_at_the_photos_own_lightness_and_stays_in_gamut():
    red = Hint(x=5, y=5, rgb=(220, 20, 30))
    red_lab = rgb_to_lab(torch.tensor([220, 20, 30], dtype=torch.float32).reshape(3, 1, 1) / 255)[:, 0, 0]
    for lightness in (20.0, 50.0, 80.0):
        a, b = hint_ab(red, lightness)
        hue = np.degrees(np.arctan2(b, a))
        assert hue == pytest.approx(np.degrees(np.arctan2(float(red_lab[2]), float(red_lab[1]))), abs=1.0)
        linear = lab_to_rgb(torch.tensor([lightness, a, b]).reshape(3, 1, 1), clip=False)
        assert float(linear.min()) >= -2e-3 and float(linear.max()) <= 1 + 2e-3  # displayable at that L
    dark_a, _ = hint_ab(red, 20.0)
    assert dark_a < float(red_lab[1])  # a red click on a dark coat is a dark red, less chroma than the swatch
    # the photo's L under the hint, not the swatch's, decides: a dark pixel gives the dark-red ab
    lightness = _flat_lightness(10, 10, 20.0)
    hint_map = encode_hints([red], lightness, (10, 10))
    assert float(hint_map[0, 0, 5, 5]) * AB_SCALE == pytest.approx(dark_a, abs=1e-3)


# --- networks with hint inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["unet_tiny", "resunet_tiny", "autoencoder_tiny", "simple_cnn_tiny", "deep_cnn_tiny", "pix2pix_tiny"]
)
def test_every_architecture_takes_hints_and_widening_keeps_its_colours(name):
    torch.manual_seed(0)
    automatic = create_model(name).eval()
    hinted = with_hint_input(automatic).eval()
    assert hinted.takes_hints and hinted.input_channels == 1 + HINT_CHANNELS
    l_norm = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = automatic(l_norm)
        assert torch.allclose(hinted(l_norm), expected, atol=1e-6)  # zero-initialised hint inputs
        zeros = torch.zeros(2, HINT_CHANNELS, 32, 32)
        assert torch.equal(hinted(l_norm, zeros), hinted(l_norm))  # None means an all-zero map
    with pytest.raises(ValueError, match="not trained to take colour hints"):
        automatic(l_norm, zeros)
    with pytest.raises(ValueError, match="hint map must have shape"):
        hinted(l_norm, torch.zeros(2, 2, 32, 32))


def test_a_hint_model_saves_that_it_takes_hints(tmp_path):
    from models.hub import load_model

    create_model("unet_tiny", hints=True).save_pretrained(tmp_path / "hinted")
    assert json.loads((tmp_path / "hinted" / "config.json").read_text())["hints"] is True
    assert load_model(tmp_path / "hinted").takes_hints
    create_model("unet_tiny").save_pretrained(tmp_path / "plain")
    assert not load_model(tmp_path / "plain").takes_hints


# --- the contract and the CLI ---------------------------------------------------------------------------------
def _photo() -> Image.Image:
    gradient = np.linspace(30, 220, 48 * 64, dtype=np.float32).reshape(48, 64)
    return Image.fromarray(gradient.astype(np.uint8), mode="L")


def test_models_without_hint_inputs_refuse_hints_and_hint_models_use_them():
    torch.manual_seed(0)
    plain = NetworkColorizer(create_model("unet_tiny").eval(), name="plain")
    with pytest.raises(HintError, match="plain does not take colour hints"):
        plain.colorize(_photo(), hints=[Hint(x=10, y=10, rgb=(200, 30, 40))])
    hinted_net = create_model("unet_tiny", hints=True).eval()
    with torch.no_grad():  # make the hint inputs matter, as training would
        first = hinted_net.stem[0]
        first.weight[:, 1:] = torch.randn_like(first.weight[:, 1:])
    hinted = NetworkColorizer(hinted_net, name="hinted")
    without = np.asarray(hinted.colorize(_photo()))
    with_hint = np.asarray(hinted.colorize(_photo(), hints=[Hint(x=10, y=10, rgb=(200, 30, 40), radius=6)]))
    assert with_hint.shape == without.shape
    assert not np.array_equal(with_hint, without)
    assert np.array_equal(np.asarray(hinted.colorize(_photo(), hints=[])), without)  # no hints: automatic


def test_cli_hints_file(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    _photo().save(photo)
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"x": 10, "y": 12, "rgb": "#c81e28", "radius": 3}]))
    plain = tmp_path / "plain"
    create_model("unet_tiny").save_pretrained(plain)
    assert colorize_main(["--model", str(plain), str(photo), "--hints", str(hints), "--out", str(tmp_path / "o")]) == 2
    assert "does not take colour hints" in capsys.readouterr().err
    hinted = tmp_path / "hinted"
    create_model("unet_tiny", hints=True).save_pretrained(hinted)
    out = tmp_path / "out"
    assert colorize_main(["--model", str(hinted), str(photo), "--hints", str(hints), "--out", str(out)]) == 0
    (written,) = out.glob("photo_*.png")
    assert Image.open(written).size == (64, 48)
    second = tmp_path / "second.png"
    _photo().save(second)
    argv = ["--model", str(hinted), str(photo), str(second), "--hints", str(hints), "--out", str(out)]
    assert colorize_main(argv) == 2
    assert "pass exactly one INPUT photo" in capsys.readouterr().err
    hints.write_text(json.dumps([{"x": 640, "y": 12, "rgb": [1, 2, 3]}]))
    assert colorize_main(["--model", str(hinted), str(photo), "--hints", str(hints), "--out", str(out), "--overwrite"])
    assert "outside the 64x48 photo" in capsys.readouterr().err


# --- simulated users and learning to follow -----------------------------------------------------------------
def test_hint_counts_are_geometric_with_zero_included_and_capped():
    generator = torch.Generator().manual_seed(0)
    counts = [hint_count(generator) for _ in range(2000)]
    assert min(counts) == 0 and max(counts) == 20
    assert 0.1 < counts.count(0) / len(counts) < 0.2  # P(0) = 0.15
    painted = paint_hints(torch.ones(2, 8, 8) * 0.5, [(0, 0, 1), (7, 7, 0)])
    assert int(painted[2].sum()) == 4 + 1 and float(painted[0].max()) == pytest.approx(0.5)


def test_a_tiny_hint_model_learns_to_follow_a_single_hint():
    # Flat colour photos of random colour: without a hint the colour is unknowable, so only following helps.
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = create_model("unet_tiny", hints=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def batch(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        ab = (torch.rand(count, 2, 1, 1, generator=generator) * 1.2 - 0.6).expand(count, 2, 16, 16).contiguous()
        return torch.rand(count, 1, 16, 16, generator=generator) * 0.4 - 0.2, ab

    for _ in range(60):
        l_norm, ab = batch(16)
        loss = (model(l_norm, sample_hint_map(ab, generator, count=1)) - ab).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    l_norm, ab = batch(8)
    hint_map = sample_hint_map(ab, generator, count=1)
    hinted = hint_map[:, 2:3].bool().expand(-1, 2, -1, -1)
    with torch.no_grad():
        following = (model(l_norm, hint_map) - ab).abs()[hinted].mean()
        guessing = (model(l_norm) - ab).abs()[hinted].mean()
    assert following < 0.5 * guessing


# --- hint propagation ---------------------------------------------------------------------------------------
def test_propagation_pulls_the_hinted_region_to_the_hint_and_leaves_other_regions_alone():
    from models.hint_propagation import HintPropagation, propagate_hint_residuals

    # left half dark, right half light; the network predicted gray everywhere; one hint on the left half
    l_norm = torch.full((1, 1, 32, 32), 0.6)
    l_norm[..., :16] = -0.6
    predicted = torch.zeros(1, 2, 32, 32)
    hint_map = torch.zeros(1, HINT_CHANNELS, 32, 32)
    hint_map[0, 0, 15:18, 4:7], hint_map[0, 1, 15:18, 4:7], hint_map[0, 2, 15:18, 4:7] = 0.4, -0.2, 1.0
    out = propagate_hint_residuals(l_norm, predicted, hint_map, HintPropagation())
    assert float(out[0, 0, 16, 5]) == pytest.approx(0.4, abs=0.03)  # at the hint: the hint's colour
    assert float(out[0, 0, 2, 12]) > 0.2  # same lightness nearby: pulled most of the way
    assert float(out[0, :, :, 16:].abs().max()) < 1e-3  # across the lightness edge: untouched
    assert torch.equal(propagate_hint_residuals(l_norm, predicted, torch.zeros_like(hint_map), HintPropagation()),
                       predicted)  # fmt: skip
    with pytest.raises(ValueError, match="positive number"):
        HintPropagation(sigma_space=0)
    with pytest.raises(ValueError, match="unknown setting"):
        HintPropagation.from_config({"sigma": 1})
    assert HintPropagation.from_config(False) is None and HintPropagation.from_config(None) is None


def test_a_hint_model_with_the_saved_setting_propagates_and_one_without_does_not():
    network = create_model("unet_tiny", hints=True).eval()
    plain_hints = NetworkColorizer(network, name="raw")
    network_with = create_model("unet_tiny", hints=True).eval()
    network_with.load_state_dict(network.state_dict())
    network_with.colorlab["hint_propagation"] = {"sigma_space": 0.25, "sigma_lightness": 0.1, "fade": 0.05}
    propagating = NetworkColorizer(network_with, name="propagating")
    hints = [Hint(x=32, y=24, rgb=(30, 60, 220), radius=4)]
    raw = np.asarray(plain_hints.colorize(_photo(), hints=hints)).astype(int)
    spread = np.asarray(propagating.colorize(_photo(), hints=hints)).astype(int)
    assert np.array_equal(np.asarray(propagating.colorize(_photo())), np.asarray(plain_hints.colorize(_photo())))
    blue_raw, blue_spread = raw[24, 32, 2] - raw[24, 32, 0], spread[24, 32, 2] - spread[24, 32, 0]
    assert blue_spread > blue_raw + 30  # the untrained network ignores the hint; propagation brings it
