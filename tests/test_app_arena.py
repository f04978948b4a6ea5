"""Arena: balanced pair scheduling, anonymous rounds, one vote per shown pair."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from app_support import save_tiny_models
from PIL import Image

from judge.ratings import InvalidToken, RatingsStore, TokenUsed, image_sha256
from models.color import lightness_from_srgb8
from space.arena import Arena, ArenaError, PairScheduler
from space.examples import prepare_examples
from space.model_pool import ModelPool, read_config_file
from space.outputs import OutputFolder

MODELS = ["m1", "m2", "m3", "m4"]
SHA = image_sha256(b"photo")


@pytest.fixture
def store(tmp_path: Path):
    with RatingsStore(tmp_path / "data", models=MODELS, rate_limit=None) as ratings:
        yield ratings


def _vote_pair(store: RatingsStore, first: str, second: str, voter: str = "v") -> None:
    pair = store.issue_pair(first, second, SHA, voter=voter)
    store.record_vote(pair.token, "tie", voter=voter)


def test_every_pair_gets_votes_at_the_same_pace(store: RatingsStore) -> None:
    scheduler = PairScheduler(store, MODELS, seed=1)
    for _ in range(60):  # 10 rounds of the 6 pairs
        first, second = scheduler.choose()
        _vote_pair(store, first, second)
    counts = Counter(frozenset((v.model_a, v.model_b)) for v in store.votes())
    assert len(counts) == 6
    assert set(counts.values()) == {10}


def test_the_least_voted_pair_goes_next(store: RatingsStore) -> None:
    for _ in range(3):  # votes cast before this process started (another worker, an earlier run)
        for first, second in [("m1", "m2"), ("m1", "m3"), ("m1", "m4"), ("m2", "m3"), ("m2", "m4")]:
            _vote_pair(store, first, second)
    scheduler = PairScheduler(store, MODELS, seed=0)
    assert set(scheduler.choose()) == {"m3", "m4"}


def test_pairs_shown_but_not_voted_yet_count_so_concurrent_rounds_spread_out(store: RatingsStore) -> None:
    scheduler = PairScheduler(store, MODELS, seed=0)
    shown = []
    for index in range(6):
        first, second = scheduler.choose()
        scheduler.shown(f"token-{index}", first, second)
        shown.append(frozenset((first, second)))
    assert len(set(shown)) == 6


def test_abandoned_rounds_stop_counting_after_their_ttl(store: RatingsStore) -> None:
    scheduler = PairScheduler(store, ["m1", "m2", "m3"], pending_ttl_s=0.0, seed=0)
    scheduler.shown("abandoned", "m1", "m2")
    assert set(scheduler.load().values()) == {0}


def test_both_orders_appear_for_a_pair(store: RatingsStore) -> None:
    scheduler = PairScheduler(store, ["m1", "m2"], seed=0)
    assert {scheduler.choose() for _ in range(40)} == {("m1", "m2"), ("m2", "m1")}


def test_fewer_than_two_models_is_a_clear_error(store: RatingsStore) -> None:
    with pytest.raises(ArenaError, match="at least two models"):
        PairScheduler(store, ["m1"])


@pytest.fixture
def arena(tmp_path: Path):
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])))
    outputs = OutputFolder(tmp_path / "out")
    with RatingsStore(tmp_path / "data", models=pool.names(), rate_limit=None) as ratings:
        yield Arena(pool, ratings, outputs, prepare_examples(tmp_path / "examples"), working_size=64, seed=0)


def test_a_round_shows_nothing_that_names_a_model(arena: Arena) -> None:
    round_ = arena.new_round(None, voter="alice")
    assert round_.image_a.name == "A.png" and round_.image_b.name == "B.png"
    assert round_.example in {example.caption for example in arena.examples}
    visible = f"{round_.image_a} {round_.image_b} {round_.example}"
    assert not any(name in visible for name in arena.pool.names())
    vote = arena.vote(round_.token, "b", voter="alice", rating_b=4)
    assert {vote.model_a, vote.model_b} == {"pix2pix", "unet"}
    assert vote.image_sha256 in {example.sha256 for example in arena.examples}


def test_a_round_takes_one_vote_from_the_voter_it_was_shown_to(arena: Arena) -> None:
    round_ = arena.new_round(None, voter="alice")
    with pytest.raises(InvalidToken):
        arena.vote(round_.token, "a", voter="mallory")
    arena.vote(round_.token, "a", voter="alice")
    with pytest.raises(TokenUsed):
        arena.vote(round_.token, "b", voter="alice")
    assert len(arena.store.votes()) == 1


def test_the_uploaded_photo_is_used_when_given(arena: Arena, tmp_path: Path, photo) -> None:
    path = tmp_path / "mine.png"
    photo("coffee", 96).save(path)
    round_ = arena.new_round(path, voter="bob")
    assert round_.example is None
    vote = arena.vote(round_.token, "tie", voter="bob")
    assert vote.image_sha256 == image_sha256(path.read_bytes())


def test_the_gray_input_is_shown_beside_a_and_b(arena: Arena, tmp_path: Path, photo) -> None:
    # A colour upload: the voter sees it gray (what both models saw), never its own colours.
    path = tmp_path / "colour.png"
    photo("coffee", 96).save(path)
    round_ = arena.new_round(path, voter="carol")
    assert round_.gray.parent == round_.image_a.parent and not any(n in round_.gray.name for n in arena.pool.names())
    with Image.open(round_.gray) as gray, Image.open(round_.image_a) as side_a, Image.open(path) as original:
        assert gray.mode == "L" and gray.size == side_a.size == original.size
        # Its lightness is the one both colorizations kept (the pipeline keeps the input's L exactly).
        lightness = [lightness_from_srgb8(np.asarray(im.convert("RGB"))).reshape(-1) for im in (gray, side_a)]
        assert float((lightness[0] - lightness[1]).abs().max()) < 1.0  # 8-bit rounding and the arena's dither
