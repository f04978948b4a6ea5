"""Handlers behind the UI: colorize, the arena wrappers, leaderboard view and model cards (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_support import save_tiny_models
from PIL import Image

from judge.ratings import RatingsStore
from space import app_logic as logic
from space.arena import ArenaError
from space.examples import prepare_examples
from space.model_pool import ModelChoiceError, ModelPool, read_config_file
from space.outputs import OutputFolder


@pytest.fixture
def ctx(tmp_path: Path):
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models")))
    store = RatingsStore(tmp_path / "data", rate_limit=None)
    context = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), min_votes=3, seed=0)
    yield context
    store.close()


@pytest.fixture
def upload(tmp_path: Path, photo) -> Path:
    path = tmp_path / "uploads" / "old photo.jpg"
    path.parent.mkdir()
    photo("camera").resize((200, 150)).save(path, quality=90)
    return path


def test_colorize_gives_each_chosen_model_a_full_resolution_png(ctx, upload: Path) -> None:
    outcome = logic.colorize(ctx, upload, ["unet", "pix2pix"], working_size=128, saturation=1.0)
    assert outcome.size == (200, 150)
    assert [r.name for r in outcome.results] == ["pix2pix", "unet"]  # the pool's order, not the click order
    with Image.open(outcome.input_image) as before:
        assert before.format == "PNG" and before.size == (200, 150)
    for result in outcome.results:
        assert result.error == "" and result.seconds > 0
        assert result.image.name == f"old_photo_{result.name}.png"  # the download's file name
        with Image.open(result.image) as after:
            assert after.format == "PNG" and after.size == (200, 150)
            assert np.ptp(np.asarray(after.convert("RGB")), axis=2).max() > 0  # colour, not gray


def test_saturation_zero_gives_gray_and_working_size_changes_the_colour(ctx, upload: Path) -> None:
    gray = logic.colorize(ctx, upload, ["pix2pix"], working_size=128, saturation=0.0).results[0].image
    rgb = np.asarray(Image.open(gray).convert("RGB")).astype(int)
    assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() <= 1
    small = logic.colorize(ctx, upload, ["pix2pix"], working_size=64, saturation=1.0).results[0].image
    large = logic.colorize(ctx, upload, ["pix2pix"], working_size=256, saturation=1.0).results[0].image
    assert Image.open(small).tobytes() != Image.open(large).tobytes()


@pytest.mark.parametrize(
    ("image", "names", "size", "saturation", "error", "message"),
    [
        (None, ["unet"], 256, 1.0, ValueError, "Upload a photo"),
        ("upload", ["unet", "../models/pix2pix_tiny"], 256, 1.0, ModelChoiceError, "not one of the models"),
        ("upload", [], 256, 1.0, ModelChoiceError, "at least one"),
        ("upload", ["unet"], 8, 1.0, ValueError, "working size must be between 64 and 1024"),
        ("upload", ["unet"], 256, 5.0, ValueError, "saturation must be between 0 and 2"),
    ],
)
def test_colorize_refuses_bad_requests_with_a_sentence(ctx, upload, image, names, size, saturation, error, message):
    with pytest.raises(error, match=message):
        logic.colorize(ctx, upload if image else None, names, working_size=size, saturation=saturation)


def test_an_unreadable_upload_is_a_clear_error(ctx, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="not an image PIL can read"):
        logic.colorize(ctx, bad, ["unet"])


def test_examples_include_real_black_and_white_photographs(ctx) -> None:
    names = [example.name for example in ctx.examples]
    assert {"camera", "coins", "moon"} <= set(names)
    for example in ctx.examples:
        with Image.open(example.path) as image:
            assert image.mode == "L"


def test_arena_vote_reveals_the_models_and_feeds_the_leaderboard(ctx) -> None:
    round_ = logic.arena_round(ctx, None, voter="session-1")
    vote = logic.arena_vote(ctx, round_.token, "a", voter="session-1", rating_a="5", rating_b=2)
    assert {vote.model_a, vote.model_b} <= set(ctx.pool.names()) and vote.model_a != vote.model_b
    assert (vote.rating_a, vote.rating_b) == (5, 2)
    reveal = logic.reveal_markdown(vote)
    assert f"A was **{vote.model_a}**" in reveal and f"B was **{vote.model_b}**" in reveal
    board = logic.leaderboard_view(ctx)
    assert board.raw.loc[0, "model"] == vote.model_a  # the winner leads
    assert board.table.loc[0, "model"] == f"{vote.model_a} (provisional)"  # 1 vote < min_votes
    assert board.table.loc[0, "MOS (1-5)"] == "5.00"
    assert "**1 vote**" in board.summary
    assert set(board.win_rates["model ↓ vs →"]) == set(ctx.pool.names())


def test_leaderboard_is_cached_until_a_new_vote(ctx) -> None:
    first = logic.leaderboard_view(ctx)
    assert logic.leaderboard_view(ctx) is first
    round_ = logic.arena_round(ctx, None, voter="v")
    logic.arena_vote(ctx, round_.token, "tie", voter="v")
    assert logic.leaderboard_view(ctx) is not first


def test_vote_without_a_round_is_refused(ctx) -> None:
    with pytest.raises(ArenaError, match="Next pair"):
        logic.arena_vote(ctx, None, "a", voter="v")


def test_uploads_are_kept_only_with_consent(ctx, upload: Path) -> None:
    images = ctx.store.data_dir / "images"
    logic.arena_round(ctx, upload, voter="v", consent=False)
    assert not images.exists() or not any(images.iterdir())
    logic.arena_round(ctx, upload, voter="v", consent=True)
    assert [path.read_bytes() for path in images.iterdir()] == [upload.read_bytes()]


def test_one_model_means_no_arena_but_colorize_works(tmp_path: Path, upload: Path) -> None:
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models", ["unet_tiny"])))
    with RatingsStore(tmp_path / "data") as store:
        ctx = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"))
        assert ctx.arena is None and "at least two models" in ctx.arena_problem
        with pytest.raises(ArenaError, match="at least two models"):
            logic.arena_round(ctx, None, voter="v")
        assert logic.colorize(ctx, upload, ["unet"]).results[0].image.is_file()


def test_model_cards_show_architecture_size_training_data_and_samples(tmp_path: Path) -> None:
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    folder = tmp_path / "models" / "pix2pix_tiny"
    Image.new("RGB", (30, 10)).save(folder / "samples.png")
    Image.new("RGB", (30, 10)).save(tmp_path / "models" / "unet_tiny" / "x.png")  # a real file outside the folder
    card = (folder / "README.md").read_text()
    # the escaping link comes first: only the containment check can keep it out of the card
    (folder / "README.md").write_text(card + "\n![escape](../unet_tiny/x.png)\n![samples](samples.png)\n")
    pool = ModelPool.load(read_config_file(config))
    with RatingsStore(tmp_path / "data") as store:
        cards = logic.model_cards(logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out")))
    assert [c.name for c in cards] == ["pix2pix", "unet"]
    pix2pix = cards[0]
    assert "`UNetGenerator`" in pix2pix.markdown and "parameters:" in pix2pix.markdown
    assert "tests/tiny" in pix2pix.markdown  # training data from the card
    assert "---" not in pix2pix.markdown.splitlines()[0]  # YAML front matter stripped
    assert "\n### pix2pix_tiny" in pix2pix.markdown  # the card's title sits below the accordion's name
    assert pix2pix.sample_image == folder / "samples.png"
    assert "![" not in pix2pix.markdown
    assert cards[1].sample_image is None


def test_a_cards_sample_grid_is_shown_where_the_card_places_it(tmp_path: Path) -> None:
    # The bundled cards put the grid under "## Samples"; a markdown block cannot serve the relative link, so the card
    # is split there and the UI shows the image itself between the heading and the next section.
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    folder = tmp_path / "models" / "pix2pix_tiny"
    Image.new("RGB", (30, 10)).save(folder / "samples.png")
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(
        card + "\n## Samples\ngray input | prediction | ground truth\n\n![samples](samples.png)\n\n## After\nmore\n"
        "![remote](https://example.com/x.png)\n"
    )
    pool = ModelPool.load(read_config_file(config))
    with RatingsStore(tmp_path / "data") as store:
        cards = logic.model_cards(logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out")))
    before, image, after = cards[0].parts
    assert before.startswith("- architecture:") and before.rstrip().endswith("gray input | prediction | ground truth")
    assert "#### Samples" in before
    assert image == folder / "samples.png"
    assert after.lstrip().startswith("#### After") and "![" not in after  # a remote image is never fetched
    assert cards[1].parts == (cards[1].markdown,)  # no images: the card is one block


def test_output_folders_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    outputs = OutputFolder(tmp_path / "out", max_age_s=0.0)
    old = outputs.new_request()
    outputs.new_request()
    assert not old.exists()


def test_pruning_keeps_the_example_photos(tmp_path: Path) -> None:
    # The examples live under the outputs root for the app's lifetime; an hour-old app must still serve them.
    outputs = OutputFolder(tmp_path / "out", max_age_s=0.0)
    examples = prepare_examples(outputs.root / "examples")
    outputs.new_request()
    assert all(Path(example.path).is_file() for example in examples)
