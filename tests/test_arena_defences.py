"""Stuffing that does not move the board: next-pair and global rate limits, pruning of unvoted pairs, the
per-voter outlier test with shadow exclusion (leaderboard, export), and arena images that are never byte-identical
to /colorize output."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from app_support import save_tiny_models
from PIL import Image

from judge.export import main as export_main
from judge.export import read_export
from judge.leaderboard import bradley_terry
from judge.outliers import flag_outlier_voters
from judge.ratings import RateLimited, RatingsStore
from space import app_logic as logic
from space.arena import dither
from space.model_pool import ModelPool, ModelSpec, read_config_file
from space.outputs import OutputFolder

SHA = "0" * 64
ATTACKER = "198.51.100.66"
STRENGTH = {"best": 1150.0, "good": 1050.0, "fair": 980.0, "worst": 820.0}  # Elo scale: known preferences


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, clock: Clock, **limits) -> RatingsStore:
    return RatingsStore(tmp_path / "data", models=list(STRENGTH), salt="defence-test-salt", clock=clock, **limits)


def _cast(store: RatingsStore, voter: str, pick, clock: Clock) -> None:
    pair = store.issue_pair("best", "worst", SHA, voter=voter)
    store.record_vote(pair.token, pick(pair.model_a, pair.model_b), voter=voter)
    clock.now += 1.0


def test_next_pair_is_limited_per_voter_and_for_everyone(tmp_path: Path) -> None:
    clock = Clock()
    with _store(tmp_path, clock, rate_limit=None, pair_limit=(3, 60.0), global_pair_limit=(5, 60.0)) as store:
        for _ in range(3):
            store.issue_pair("best", "good", SHA, voter="10.0.0.1")
        with pytest.raises(RateLimited, match=r"^Too many new pairs: at most 3 every 60 s; try again in 60 s\.$"):
            store.check_pair_allowed("10.0.0.1")
        with pytest.raises(RateLimited, match="Too many new pairs"):
            store.issue_pair("best", "good", SHA, voter="10.0.0.1")
        store.issue_pair("best", "good", SHA, voter="10.0.0.2")
        store.issue_pair("best", "good", SHA, voter="10.0.0.3")
        with pytest.raises(RateLimited, match=r"^The arena is busy: at most 5 new pairs for everyone every 60 s"):
            store.issue_pair("best", "good", SHA, voter="10.0.0.4")  # a fresh identity does not lift the ceiling
        clock.now += 61
        store.issue_pair("best", "good", SHA, voter="10.0.0.1")


def test_votes_have_a_ceiling_for_everyone_together(tmp_path: Path) -> None:
    clock = Clock()
    with _store(tmp_path, clock, rate_limit=(30, 60.0), global_vote_limit=(4, 60.0)) as store:
        for n in range(4):
            _cast(store, f"10.0.0.{n}", lambda a, b: "a", clock)
        with pytest.raises(RateLimited, match=r"^The arena is busy: at most 4 votes from everyone every 60 s"):
            _cast(store, "10.0.0.9", lambda a, b: "a", clock)


def test_unvoted_pairs_are_pruned_once_their_token_expired(tmp_path: Path) -> None:
    clock = Clock()
    with _store(tmp_path, clock, token_ttl_s=600) as store:
        for _ in range(20):
            store.issue_pair("best", "good", SHA, voter="10.0.0.1")  # shown, never voted
        _cast(store, "10.0.0.1", lambda a, b: "a", clock)
        clock.now += 601
        store.issue_pair("best", "good", SHA, voter="10.0.0.1")
        with sqlite3.connect(store.db_path) as conn:
            unvoted, voted = conn.execute(
                "SELECT SUM(used_at IS NULL), SUM(used_at IS NOT NULL) FROM pairs"
            ).fetchone()
        assert (unvoted, voted) == (1, 1)  # the fresh pair, and the voted pair its vote refers to
        assert len(store.votes()) == 1


def _honest_votes(store: RatingsStore, clock: Clock, voters: int, per_voter: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    models = list(STRENGTH)
    for voter in range(voters):
        for _ in range(per_voter):
            first, second = rng.sample(models, 2)
            p_first = 1 / (1 + 10 ** ((STRENGTH[second] - STRENGTH[first]) / 400))
            preferred = None if rng.random() < 0.1 else (first if rng.random() < p_first else second)
            # The store shows the sides in random order (SystemRandom): map the preference onto them afterwards.
            pair = store.issue_pair(first, second, SHA, voter=f"192.0.2.{voter}")
            choice = "tie" if preferred is None else ("a" if pair.model_a == preferred else "b")
            store.record_vote(pair.token, choice, voter=f"192.0.2.{voter}")
            clock.now += 1.0


def _attack(store: RatingsStore, clock: Clock, votes: int, voter: str = ATTACKER, seed: int = 1) -> None:
    """Always votes for the worst model (as if it recognised it), in pairs that contain it."""
    rng = random.Random(seed)
    for _ in range(votes):
        pair = store.issue_pair("worst", rng.choice(["best", "good", "fair"]), SHA, voter=voter)
        store.record_vote(pair.token, "a" if pair.model_a == "worst" else "b", voter=voter)
        clock.now += 1.0


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    # Module-scoped: the tests below only read it, and casting 350 votes (each fsynced) is the slow part.
    clock = Clock()
    with _store(tmp_path_factory.mktemp("attacked"), clock, rate_limit=None) as store:
        _honest_votes(store, clock, voters=40, per_voter=6)
        _attack(store, clock, votes=110)
        yield store


def test_the_outlier_test_flags_a_stuffer_and_no_honest_voter(attacked: RatingsStore) -> None:
    flags = flag_outlier_voters(attacked.votes(), list(STRENGTH))
    assert list(flags) == [attacked.voter_id(ATTACKER)]
    [flag] = flags.values()
    assert flag.votes == 110 and re.match(r"outlier: after \d+ votes, Fisher.s statistic \d+ exceeds", flag.reason)


def test_flagged_votes_leave_the_leaderboard_but_stay_in_database_and_export(attacked, tmp_path: Path) -> None:
    save_tiny_models(tmp_path / "models", ["unet_tiny"])
    pool = ModelPool.load([ModelSpec(name, str(tmp_path / "models" / "unet_tiny")) for name in STRENGTH])
    ctx = logic.AppContext.build(pool, attacked, outputs=OutputFolder(tmp_path / "out"), seed=0)
    view = logic.leaderboard_view(ctx)
    honest = [vote for vote in attacked.votes() if vote.voter_id != attacked.voter_id(ATTACKER)]
    honest_scores = bradley_terry(honest, list(STRENGTH))
    assert view.raw["model"].tolist() == sorted(STRENGTH, key=honest_scores.get, reverse=True)  # the honest order
    assert view.raw["model"].tolist()[-1] == "worst"
    assert "**240 votes**" in view.summary and "Left out: 110 votes from 1 voter" in view.summary
    assert len(attacked.votes()) == 350  # nothing deleted

    out = tmp_path / "votes.jsonl"
    assert export_main(["export", "--data-dir", str(attacked.data_dir), "--out", str(out)]) == 0
    rows = read_export(out)
    excluded = [row for row in rows if row["excluded_reason"]]
    assert len(rows) == 350 and len(excluded) == 110
    assert all(row["excluded_reason"].startswith("outlier:") for row in excluded)


def test_without_the_outlier_test_the_stuffer_would_have_moved_the_board(attacked: RatingsStore) -> None:
    scores = bradley_terry(attacked.votes(), list(STRENGTH))
    assert scores["worst"] > scores["fair"]  # why the test is needed: 110 votes were enough to lift "worst"


def test_arena_images_are_never_byte_identical_to_colorize_output(tmp_path: Path, photo) -> None:
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])))
    with RatingsStore(tmp_path / "data", rate_limit=None) as store:
        ctx = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), seed=0)
        upload = tmp_path / "photo.png"
        photo("camera", 96).save(upload)
        round_ = logic.arena_round(ctx, upload, voter="10.0.0.1")
        shown = [
            np.asarray(Image.open(path).convert("RGB"), dtype=np.int16) for path in (round_.image_a, round_.image_b)
        ]
        for size in (224, 256, 288):  # every working size the arena may use
            outcome = logic.colorize(ctx, upload, pool.names(), working_size=size)
            for result in outcome.results:
                rerun = np.asarray(Image.open(result.image).convert("RGB"), dtype=np.int16)
                assert all(not np.array_equal(rerun, image) for image in shown)


def test_dither_changes_each_value_by_at_most_one() -> None:
    image = Image.fromarray(np.full((64, 64, 3), [1, 128, 254], dtype=np.uint8))
    dithered = np.asarray(dither(image, np.random.default_rng(0)), dtype=np.int16)
    difference = dithered - np.asarray(image, dtype=np.int16)
    assert np.abs(difference).max() == 1 and (difference != 0).mean() > 0.5
    assert dithered.min() >= 0 and dithered.max() <= 255
