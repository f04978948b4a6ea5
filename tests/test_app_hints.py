"""Colour points in the app: the handler gives them to hint models only (shown first, captions
say which models used them), forged clicks, colours and state are refused with a sentence, undo and clear.

.venv/bin/python -m pytest tests/test_app_hints.py -q
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from judge.ratings import RatingsStore
from models.hints import MAX_HINTS, Hint, HintError
from space import app_logic as logic
from space import hint_state
from space.hints_ui import click_note
from space.model_pool import DEFAULT_CONFIG, ModelPool, read_config_file
from space.outputs import OutputFolder

RED = (200, 30, 40)


def save_models(folder: Path) -> Path:
    """A tiny automatic pix2pix and a tiny hint U-Net (seeded random weights: its hint inputs are not zero, so the
    points change its output), listed automatic first as in space/models.yaml."""
    from models.registry import create_model

    entries = []
    for seed, (name, variant, hints) in enumerate((("pix2pix", "pix2pix_tiny", False), ("hints", "unet_tiny", True))):
        torch.manual_seed(seed)
        model = create_model(variant, hints=hints)
        if hints:  # random weights barely move the output; strong hint inputs make the points' effect plain
            first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
            with torch.no_grad():
                first.weight[:, 1:] *= 20
        model.save_pretrained(folder / name)
        entries.append({"name": name, "source": str(folder / name)})
    config = folder / "models.yaml"
    config.write_text(yaml.safe_dump({"models": entries}), encoding="utf-8")
    return config


@pytest.fixture
def ctx(tmp_path: Path):
    pool = ModelPool.load(read_config_file(save_models(tmp_path / "models")))
    assert pool.names() == ["pix2pix", "hints"] and not pool.failures
    store = RatingsStore(tmp_path / "data", rate_limit=None)
    context = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), seed=0)
    yield context
    store.close()


@pytest.fixture
def upload(tmp_path: Path, photo) -> Path:
    path = tmp_path / "uploads" / "street.png"
    path.parent.mkdir()
    photo("camera").resize((240, 180)).save(path)
    return path


def record_inputs(ctx: logic.AppContext, name: str) -> list[tuple]:
    """The arguments every forward pass of `name`'s network receives (L, and the hint map for a hint model)."""
    calls: list[tuple] = []
    network = ctx.pool.get(name).colorizer.model
    network.register_forward_pre_hook(lambda _module, args: calls.append(args))
    return calls


def rgb_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_points_reach_the_hint_model_where_clicked_and_it_is_shown_first(ctx, upload: Path) -> None:
    hint_calls, auto_calls = record_inputs(ctx, "hints"), record_inputs(ctx, "pix2pix")
    hints = [Hint(x=180, y=45, rgb=RED, radius=2)]
    outcome = logic.colorize(ctx, upload, ["pix2pix", "hints"], working_size=128, hints=hints)

    assert [r.name for r in outcome.results] == ["hints", "pix2pix"]  # the model that follows points comes first
    followed, automatic = outcome.results
    assert followed.hinted and followed.hint_note == "with your 1 colour point"
    assert not automatic.hinted and automatic.hint_note == "automatic: this model does not take hints"
    assert outcome.hints == 1 and followed.error == automatic.error == ""

    (l_norm, hint_map) = hint_calls[0]
    assert hint_map.shape == (1, 3, *l_norm.shape[-2:])
    mask = hint_map[0, 2]
    rows, columns = torch.nonzero(mask, as_tuple=True)
    # x 180 of 240 and y 45 of 180 land at 3/4 across and 1/4 down the 128 x 128 working image
    assert abs(columns.float().mean() - 95.5) <= 1 and abs(rows.float().mean() - 31.5) <= 1
    assert (hint_map[0, 0][mask > 0] > 0.1).all()  # red: a clearly positive a (at the photo's own L there)
    assert len(auto_calls[0]) == 1  # the automatic model got L only: no hint map was forced on it


def test_the_points_change_the_hint_models_colours_not_the_others(ctx, upload: Path) -> None:
    hints = [Hint(x=60, y=90, rgb=(20, 60, 220), radius=3)]
    plain = logic.colorize(ctx, upload, ["pix2pix", "hints"], working_size=128)
    hinted = logic.colorize(ctx, upload, ["pix2pix", "hints"], working_size=128, hints=hints)
    images = {
        (label, result.name): rgb_of(result.image)
        for label, outcome in (("plain", plain), ("hinted", hinted))
        for result in outcome.results
    }
    assert np.abs(images["plain", "hints"] - images["hinted", "hints"]).max() > 1
    assert np.array_equal(images["plain", "pix2pix"], images["hinted", "pix2pix"])


def test_without_points_nothing_changes(ctx, upload: Path) -> None:
    calls = record_inputs(ctx, "hints")
    outcome = logic.colorize(ctx, upload, ["hints", "pix2pix"], working_size=128, hints=[])
    assert [r.name for r in outcome.results] == ["pix2pix", "hints"]  # the pool's order, as before hints existed
    assert all(not r.hinted and r.hint_note == "" for r in outcome.results) and outcome.hints == 0
    assert len(calls[0]) == 1  # the hint model colorized automatically (no map: all zeros inside the network)


def test_only_automatic_models_chosen_still_colorize_and_say_so(ctx, upload: Path) -> None:
    outcome = logic.colorize(ctx, upload, ["pix2pix"], working_size=128, hints=[Hint(x=5, y=5, rgb=RED)])
    (result,) = outcome.results
    assert result.image is not None and result.error == ""
    assert not result.hinted and result.hint_note == "automatic: this model does not take hints"


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ([Hint(x=240, y=10, rgb=RED)], r"Hint 1 at \(240, 10\) lies outside the 240x180 photo"),
        ([{"x": 1, "y": 2, "rgb": "#ff0000"}], "colour points were not understood"),
        ([Hint(x=1, y=1, rgb=RED)] * (MAX_HINTS + 1), f"at most {MAX_HINTS} are taken"),
    ],
)
def test_colorize_refuses_points_that_do_not_fit_the_photo(ctx, upload: Path, hints, message) -> None:
    with pytest.raises(HintError, match=message):
        logic.colorize(ctx, upload, ["hints"], hints=hints)


# --- the clicks, colours and state the browser sends ----------------------------------------------------------------


def place(ctx, upload, points=None, index=(10, 20), colour="#c81e28", source=hint_state.PICKED, result=None):
    return hint_state.place_point(
        points or [],
        index,
        photo=upload,
        uploads=ctx.uploads,
        colour=colour,
        source=source,
        result=result,
        outputs_root=ctx.outputs.root,
    )


def test_clicks_become_points_that_undo_and_clear(ctx, upload: Path) -> None:
    points = place(ctx, upload, index=[10, 20])
    points = place(ctx, upload, points, index=[239, 179], colour="rgba(20, 60, 220, 1)")
    radius = hint_state.point_radius((240, 180))
    assert points == [
        {"x": 10, "y": 20, "rgb": "#c81e28", "radius": radius},
        {"x": 239, "y": 179, "rgb": "#143cdc", "radius": radius},
    ]
    assert hint_state.hints_from_points(points, (240, 180))[1] == Hint(239, 179, rgb=(20, 60, 220), radius=radius)
    listing = hint_state.points_html(points)
    assert listing.startswith("<ol") and listing.count("<li") == 2
    assert "(10, 20) #c81e28</li>" in listing and "(239, 179) #143cdc</li>" in listing
    assert hint_state.undo_point(points) == points[:1]
    assert hint_state.undo_point(hint_state.undo_point(points)) == [] and hint_state.undo_point([]) == []
    assert "No colour points yet" in hint_state.points_html([])


@pytest.mark.parametrize(
    ("index", "colour", "source", "message"),
    [
        (None, "#c81e28", hint_state.PICKED, "Click on the photo itself"),  # a click beside the photo
        ([10], "#c81e28", hint_state.PICKED, "Click on the photo itself"),
        (["10", "20"], "#c81e28", hint_state.PICKED, "Click on the photo itself"),
        ([math.nan, 20], "#c81e28", hint_state.PICKED, "Click on the photo itself"),
        ([True, 20], "#c81e28", hint_state.PICKED, "Click on the photo itself"),
        ([240, 20], "#c81e28", hint_state.PICKED, r"lies outside the 240x180 photo"),
        ([-5, 20], "#c81e28", hint_state.PICKED, r"lies outside the 240x180 photo"),
        ([10, 20], "red", hint_state.PICKED, "'red' is not a colour; pick the point's colour"),
        ([10, 20], "#12345", hint_state.PICKED, "is not a colour"),
        ([10, 20], "rgb(300, 0, 0)", hint_state.PICKED, "is not a colour"),
        ([10, 20], None, hint_state.PICKED, "is not a colour"),
        ([10, 20], "#c81e28", "the neighbour's colour", "Choose where a point's colour comes from"),
        ([10, 20], "#c81e28", hint_state.FROM_RESULT, "Colorize the photo first"),  # no result yet
    ],
)
def test_forged_clicks_and_colours_are_refused_with_a_sentence(ctx, upload, index, colour, source, message) -> None:
    with pytest.raises(HintError, match=message) as caught:
        place(ctx, upload, index=index, colour=colour, source=source)
    assert str(caught.value).endswith(".") and "Traceback" not in str(caught.value)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("[{'x': 1}]", "not understood"),
        ([{"x": 1, "y": 2, "rgb": "#ff0000", "path": "/etc/passwd"}], "Colour point 1 has unknown key"),
        ([{"x": 1, "y": 2, "rgb": [999, 0, 0]}], "Colour point 1: A hint's rgb colour must be three numbers"),
        ([{"x": 10_000, "y": 2, "rgb": "#ff0000"}], "Hint 1 at .* lies outside the 240x180 photo"),
        ([{"x": 1, "y": 2, "rgb": "#ff0000"}] * MAX_HINTS, f"at most {MAX_HINTS} colour points"),
        ([{"x": 1, "y": 2, "rgb": "#ff0000"}] * (MAX_HINTS + 1), "not understood"),
    ],
)
def test_a_forged_state_is_refused_and_clears_on_undo(ctx, upload, points, message) -> None:
    with pytest.raises(HintError, match=message):
        place(ctx, upload, points=points)
    if not isinstance(points, list) or len(points) > MAX_HINTS or "path" in points[0]:
        assert hint_state.undo_point(points) == []


def test_a_click_outside_the_upload_limits_or_without_a_photo_is_a_sentence(ctx, tmp_path: Path) -> None:
    with pytest.raises(HintError, match="Upload a photo or pick an example first"):
        place(ctx, None)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png is not an image PIL can read"):
        place(ctx, notes)
    ctx.uploads.max_bytes = 10
    with pytest.raises(ValueError, match=r"above the .* MB upload limit"):
        place(ctx, notes)


def test_clicks_are_in_the_photo_as_shown_with_its_exif_rotation(ctx, tmp_path: Path) -> None:
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 240 x 180, shown (and colorized) turned: 180 x 240
    Image.new("L", (240, 180), 128).save(path, exif=exif)
    assert hint_state.photo_size(ctx.uploads, path) == (180, 240)
    assert place(ctx, path, index=[170, 230])[0]["y"] == 230
    with pytest.raises(HintError, match="outside the 180x240 photo"):
        place(ctx, path, index=[230, 170])


def test_a_click_can_take_the_current_results_colour(ctx, upload: Path, tmp_path: Path) -> None:
    result = logic.colorize(ctx, upload, ["pix2pix"], working_size=128).results[0].image
    points = place(ctx, upload, index=[100, 60], source=hint_state.FROM_RESULT, result=str(result))
    half = round(hint_state.point_radius((240, 180)))
    expected = rgb_of(result)[60 - half : 60 + half + 1, 100 - half : 100 + half + 1].reshape(-1, 3).mean(axis=0)
    assert points[0]["rgb"] == hint_state.hex_colour([round(v) for v in expected])
    # a forged result path outside the app's output folder, or a result of another photo, is refused
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (240, 180), "red").save(outside)
    with pytest.raises(HintError, match="Colorize the photo first"):
        place(ctx, upload, source=hint_state.FROM_RESULT, result=str(outside))
    other = ctx.outputs.root / "other.png"
    Image.new("RGB", (100, 100), "red").save(other)
    with pytest.raises(HintError, match="belongs to another photo"):
        place(ctx, upload, source=hint_state.FROM_RESULT, result=str(other))
    result.unlink()  # pruned after an hour
    with pytest.raises(HintError, match="has expired; colorize the photo again"):
        place(ctx, upload, source=hint_state.FROM_RESULT, result=str(result))


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("#C81E28", (200, 30, 40)),
        ("c81e28", (200, 30, 40)),
        ("#c1e", (204, 17, 238)),
        ("#c81e28ff", (200, 30, 40)),
        ("rgb(200, 30, 40)", (200, 30, 40)),
        ("rgba(200.4, 30, 40, 0.5)", (200, 30, 40)),
    ],
)
def test_the_colour_pickers_spellings_are_understood(text: str, rgb: tuple[int, int, int]) -> None:
    assert hint_state.parse_colour(text) == rgb


def test_placing_a_point_ticks_the_hint_models_once() -> None:
    ticked, note = click_note(1, ["pix2pix"], ["hints"])
    assert ticked == ["pix2pix", "hints"] and "Ticked hints: it follows colour points." in note
    assert click_note(2, ["hints"], ["hints"]) == (["hints"], "2 colour points; press **Colorize** to use them.")
    assert "None of the models served here follows" in click_note(1, ["pix2pix"], [])[1]


def test_the_bundled_list_names_the_hint_model_and_the_app_opens_without_it(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in read_config_file(DEFAULT_CONFIG)}
    assert specs["colour_hints"].source == "weights/colour_hints"
    assert next(iter(specs)) != "colour_hints"  # the default shown first without points stays the automatic one
    # A fresh clone before the hint model is bundled: that entry is reported, the others are served.
    torch.manual_seed(0)
    from models.registry import create_model

    create_model("unet_tiny").save_pretrained(tmp_path / "weights" / "colour_l1")
    pool = ModelPool.load([specs["colour_l1"], specs["colour_hints"]], root=tmp_path, fallback=False)
    assert pool.names() == ["colour_l1"]
    (failure,) = pool.failures
    assert failure.spec.name == "colour_hints" and "weights/colour_hints does not exist yet" in failure.reason
