"""python -m pytest tests/test_ratings.py -q

The arena's ratings store (tokens, rate limit, privacy, migrations, durability), export and Hub sync.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from unittest.mock import create_autospec

import pytest
from huggingface_hub import HfApi

from judge.export import main, read_export
from judge.leaderboard import leaderboard_table
from judge.ratings import (
    SCHEMA_VERSION,
    BadChoice,
    BadInput,
    BadRating,
    InvalidToken,
    RateLimited,
    RatingsError,
    RatingsStore,
    TokenExpired,
    TokenUsed,
    UnknownModel,
    image_sha256,
)
from judge.sync import start_hub_sync

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ["pix2pix", "unet", "cnn"]
SHA = image_sha256(b"an uploaded photo")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    with RatingsStore(tmp_path / "data", models=MODELS, rate_limit=(5, 60), token_ttl_s=600, clock=clock) as s:
        yield s


def cast(store: RatingsStore, choice: str = "a", voter: str = "10.0.0.1", **ratings):
    pair = store.issue_pair("pix2pix", "unet", SHA, voter=voter)
    return store.record_vote(pair.token, choice, voter=voter, **ratings)


def test_vote_is_stored_with_the_pair_the_server_chose(store):
    pair = store.issue_pair("pix2pix", "unet", SHA, voter="10.0.0.1")
    assert {pair.model_a, pair.model_b} == {"pix2pix", "unet"}
    vote = store.record_vote(pair.token, "b", voter="10.0.0.1", rating_a=2, rating_b=5)
    assert (vote.model_a, vote.model_b, vote.winner, vote.rating_a, vote.rating_b) == (
        pair.model_a, pair.model_b, "b", 2, 5,
    )  # fmt: skip
    assert store.votes() == [vote]
    assert vote.image_sha256 == SHA and "10.0.0.1" not in vote.voter_id and len(vote.voter_id) == 32


def test_server_picks_both_side_orders(store):
    orders = {(p.model_a, p.model_b) for p in (store.issue_pair("pix2pix", "unet", SHA, voter="v") for _ in range(64))}
    assert orders == {("pix2pix", "unet"), ("unet", "pix2pix")}


def test_token_cannot_be_used_twice(store):
    pair = store.issue_pair("pix2pix", "cnn", SHA, voter="v")
    store.record_vote(pair.token, "a", voter="v")
    with pytest.raises(TokenUsed, match="already voted"):
        store.record_vote(pair.token, "b", voter="v")
    assert [v.winner for v in store.votes()] == ["a"]


def test_forged_or_borrowed_token_is_refused(store):
    with pytest.raises(InvalidToken, match="does not match a pair shown to you"):
        store.record_vote("forged-token", "a", voter="v")
    pair = store.issue_pair("pix2pix", "cnn", SHA, voter="alice")
    with pytest.raises(InvalidToken):
        store.record_vote(pair.token, "a", voter="mallory")
    store.record_vote(pair.token, "a", voter="alice")  # still valid for the voter it was shown to
    assert len(store.votes()) == 1


def test_expired_token_is_refused(store, clock):
    pair = store.issue_pair("pix2pix", "cnn", SHA, voter="v")
    clock.now += 601
    with pytest.raises(TokenExpired, match="too long ago"):
        store.record_vote(pair.token, "a", voter="v")
    assert store.votes() == []


def test_unknown_model_is_refused(store, tmp_path):
    with pytest.raises(UnknownModel, match=r"'sd-xl' is not served by this arena \(known: cnn, pix2pix, unet\)"):
        store.issue_pair("pix2pix", "sd-xl", SHA, voter="v")
    pair = store.issue_pair("pix2pix", "cnn", SHA, voter="v")
    store.set_models(["pix2pix", "unet"])  # the app stopped serving cnn after showing the pair
    with pytest.raises(UnknownModel):
        store.record_vote(pair.token, "a", voter="v")
    with RatingsStore(tmp_path / "other") as bare, pytest.raises(UnknownModel, match="set_models"):
        bare.issue_pair("pix2pix", "cnn", SHA, voter="v")


@pytest.mark.parametrize(
    ("choice", "ratings", "error"),
    [
        ("left", {}, BadChoice),
        ("a", {"rating_a": 0}, BadRating),
        ("a", {"rating_b": 6}, BadRating),
        ("a", {"rating_a": 2.5}, BadRating),
        ("a", {"rating_a": True}, BadRating),
    ],
)
def test_bad_choice_or_rating_is_refused_and_keeps_the_token(store, choice, ratings, error):
    pair = store.issue_pair("pix2pix", "cnn", SHA, voter="v")
    with pytest.raises(error) as info:
        store.record_vote(pair.token, choice, voter="v", **ratings)
    assert isinstance(info.value, ValueError)
    assert store.record_vote(pair.token, "tie", voter="v").winner == "tie"


def test_bad_pair_requests_are_refused(store):
    with pytest.raises(BadInput, match="two different models"):
        store.issue_pair("unet", "unet", SHA, voter="v")
    with pytest.raises(BadInput, match="64 lowercase hex"):
        store.issue_pair("unet", "cnn", "photo.png", voter="v")
    with pytest.raises(BadInput, match="voter identifier is empty"):
        store.issue_pair("unet", "cnn", SHA, voter="")


def test_rate_limit_per_voter(store, clock):
    for _ in range(5):
        cast(store)
        clock.now += 1
    pair = store.issue_pair("pix2pix", "unet", SHA, voter="10.0.0.1")
    with pytest.raises(RateLimited, match="at most 5 every 60 s; try again in 55 s") as info:
        store.record_vote(pair.token, "a", voter="10.0.0.1")
    assert info.value.retry_after_s == pytest.approx(55)
    cast(store, voter="10.0.0.2")  # other voters are not held back
    clock.now += 56
    store.record_vote(pair.token, "a", voter="10.0.0.1")  # the refused vote did not use up its token
    assert len(store.votes()) == 7


def test_voter_ids_are_salted_and_the_salt_persists(tmp_path, monkeypatch):
    monkeypatch.delenv("COLORLAB_VOTER_SALT", raising=False)
    with RatingsStore(tmp_path / "a") as first:
        voter = first.voter_id("10.0.0.1")
    salt_file = tmp_path / "a" / "voter_salt"
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    with RatingsStore(tmp_path / "a") as reopened:
        assert reopened.voter_id("10.0.0.1") == voter
    with RatingsStore(tmp_path / "b") as other_dir:
        assert other_dir.voter_id("10.0.0.1") != voter  # another salt: ids cannot be joined across stores
    monkeypatch.setenv("COLORLAB_VOTER_SALT", "from-the-environment")
    with RatingsStore(tmp_path / "c") as env_salt:
        assert env_salt.voter_id("10.0.0.1") != voter
        assert not (tmp_path / "c" / "voter_salt").exists()


def test_images_are_kept_only_with_consent(store):
    png = b"\x89PNG\r\n\x1a\n fake image bytes"
    sha = image_sha256(png)
    assert store.store_image(sha, png, consent=False) is None
    assert not (store.data_dir / "images").exists()
    path = store.store_image(sha, png, consent=True)
    assert path == store.data_dir / "images" / f"{sha}.png" and path.read_bytes() == png
    with pytest.raises(BadInput, match="do not match"):
        store.store_image(SHA, png, consent=True)


V1_SCHEMA = [  # exactly what the first release created
    """CREATE TABLE pairs (token TEXT PRIMARY KEY, model_a TEXT NOT NULL, model_b TEXT NOT NULL,
       image_sha256 TEXT NOT NULL, voter_id TEXT NOT NULL, issued_at REAL NOT NULL, used_at REAL)""",
    """CREATE TABLE votes (id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL UNIQUE REFERENCES pairs(token),
       model_a TEXT NOT NULL, model_b TEXT NOT NULL,
       winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'tie', 'both_bad')),
       image_sha256 TEXT NOT NULL, voter_id TEXT NOT NULL, created_at REAL NOT NULL)""",
]


def test_v1_database_is_migrated_without_losing_rows(tmp_path, clock):
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "ratings.sqlite3")
    for statement in V1_SCHEMA:
        conn.execute(statement)
    now = clock.now
    with RatingsStore(tmp_path / "scratch", salt="s") as scratch:
        voter2 = scratch.voter_id("v2")  # what the old release stored for the identifier "v2"
    conn.executemany(
        "INSERT INTO pairs VALUES (?,?,?,?,?,?,?)",
        [("t1", "unet", "cnn", SHA, "voter1", now, now), ("t2", "cnn", "unet", SHA, voter2, now, None)],
    )
    conn.execute("INSERT INTO votes VALUES (1, 't1', 'unet', 'cnn', 'tie', ?, 'voter1', ?)", (SHA, now))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    with RatingsStore(data, models=MODELS, salt="s", clock=clock) as store:
        assert store.schema_version == SCHEMA_VERSION
        [old] = store.votes()
        assert (old.vote_id, old.model_a, old.winner, old.rating_a, old.voter_id) == (1, "unet", "tie", None, "voter1")
        new = cast(store, rating_a=4)
        assert new.vote_id == 2 and store.votes()[1].rating_a == 4
        assert store.record_vote("t2", "b", voter="v2", rating_b=3).model_a == "cnn"  # shown before the upgrade


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "data").mkdir()
    conn = sqlite3.connect(tmp_path / "data" / "ratings.sqlite3")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    refused = f"schema v99 but this code knows up to v{SCHEMA_VERSION}; upgrade ColorLab"
    with pytest.raises(RatingsError, match=refused):
        RatingsStore(tmp_path / "data")


def test_concurrent_votes_from_worker_threads(tmp_path):
    store = RatingsStore(tmp_path, models=MODELS, rate_limit=None, salt="s")
    errors = []

    def worker(n: int) -> None:
        try:
            for _ in range(10):
                cast(store, voter=f"session-{n}")
        except Exception as err:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v.vote_id for v in store.votes()) == list(range(1, 41))
    store.close()
    with pytest.raises(RatingsError, match="closed"):
        store.votes()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through Linux /proc")
def test_connections_of_finished_threads_are_closed(tmp_path):
    store = RatingsStore(tmp_path, models=MODELS, rate_limit=None, salt="s")
    open_files = len(os.listdir("/proc/self/fd"))
    for n in range(20):  # like anyio retiring idle worker threads one after another
        thread = threading.Thread(target=cast, args=(store,), kwargs={"voter": f"s{n}"})
        thread.start()
        thread.join()
    gc.collect()
    assert len(store.votes()) == 20
    assert len(os.listdir("/proc/self/fd")) < open_files + 5  # a leak would hold 2-3 files per thread
    store.close()


CASTER = textwrap.dedent(
    """
    import sys
    from judge.ratings import RatingsStore
    store = RatingsStore(sys.argv[1], models=["x", "y"], salt="s", rate_limit=None)
    while True:
        pair = store.issue_pair("x", "y", "0" * 64, voter="v")
        vote = store.record_vote(pair.token, "tie", voter="v")
        print("ack", vote.vote_id, pair.token, flush=True)
    """
)


@pytest.mark.slow  # several processes for seconds each; CI still runs it (-m 'not slow' skips it)
def test_acknowledged_votes_survive_sigkill(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CASTER, str(tmp_path / "data")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    acked = {}
    try:
        while len(acked) < 300:
            line = proc.stdout.readline()
            assert line, f"the vote caster died early: {proc.stderr.read()}"
            _, vote_id, token = line.split()
            acked[int(vote_id)] = token
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: it is still casting votes
    for line in proc.stdout:  # acks printed before the kill landed count too
        if line.endswith("\n"):
            _, vote_id, token = line.split()
            acked[int(vote_id)] = token
    assert proc.wait() == -signal.SIGKILL

    conn = sqlite3.connect(tmp_path / "data" / "ratings.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = dict(conn.execute("SELECT id, token FROM votes"))
    conn.close()
    assert {vote_id: stored.get(vote_id) for vote_id in acked} == acked


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_round_trips(store, tmp_path, fmt, capsys):
    cast(store, "a", rating_a=5)
    cast(store, "both_bad", voter="other", rating_b=1)
    out = tmp_path / f"votes.{fmt}"
    assert main(["export", "--format", fmt, "--data_dir", str(store.data_dir), "--out", str(out)]) == 0
    rows = read_export(out)
    assert rows == [{**v.to_row(), "excluded_reason": None} for v in store.votes()]
    assert rows[0]["rating_b"] is None and rows[1]["winner"] == "both_bad"
    assert "wrote 2 votes" in capsys.readouterr().err


def test_export_to_stdout_and_failures(store, tmp_path, capsys):
    cast(store)
    assert main(["export", "--data_dir", str(store.data_dir)]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["export", "--format", "parquet", "--data_dir", str(store.data_dir)]) == 2
    assert "pass --out" in capsys.readouterr().err
    assert main(["export", "--data_dir", str(tmp_path / "nowhere")]) == 2
    assert "no ratings database" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # exporting never creates a database


def test_votes_feed_the_leaderboard(store):
    for choice in ["a", "a", "tie"]:
        cast(store, choice, rating_a=4, rating_b=2)
    table = leaderboard_table(store.votes(), MODELS, min_votes=1, n_boot=10)
    assert table.set_index("model").loc["cnn", "votes"] == 0
    assert table["votes"].sum() == 6


def test_hub_sync_uploads_append_only_vote_shards(store, monkeypatch):
    monkeypatch.delenv("COLORLAB_RATINGS_REPO", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert start_hub_sync(store) is None  # not configured: nothing starts

    def fake_api() -> HfApi:
        api = create_autospec(HfApi, instance=True)
        api.create_repo.return_value.repo_id = "colorlab/arena-votes"
        return api

    def uploaded(api) -> list[str]:
        return [op.path_in_repo for call in api.create_commit.call_args_list for op in call.kwargs["operations"]]

    monkeypatch.setenv("COLORLAB_RATINGS_REPO", "colorlab/arena-votes")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = fake_api()
    sync = start_hub_sync(store, hf_api=api)
    try:
        api.create_repo.assert_called_once()
        assert api.create_repo.call_args.kwargs == {
            "repo_id": "colorlab/arena-votes", "repo_type": "dataset", "exist_ok": True, "private": True,
        }  # fmt: skip
        for _ in range(3):
            cast(store)
        sync.push_to_hub()
        assert api.create_commit.call_args.kwargs["repo_type"] == "dataset"
        assert api.create_commit.call_args.kwargs["repo_id"] == "colorlab/arena-votes"
        assert uploaded(api) == ["votes/votes-0000000001-0000000003.jsonl"]
        first_shard = store.data_dir / "hub_sync" / "votes-0000000001-0000000003.jsonl"
        before = first_shard.read_bytes()

        cast(store, "b")
        sync.push_to_hub()
        assert uploaded(api)[1:] == ["votes/votes-0000000004-0000000004.jsonl"]  # only the new shard
        assert first_shard.read_bytes() == before  # old shards are never rewritten
        assert sync.push_to_hub() is None and api.create_commit.call_count == 2  # nothing new: no commit
        shards = sorted((store.data_dir / "hub_sync").glob("*.jsonl"))
        assert [r["vote_id"] for s in shards for r in read_export(s)] == [1, 2, 3, 4]
    finally:
        sync.stop()

    restarted_api = fake_api()
    restarted = start_hub_sync(store, hf_api=restarted_api)
    try:
        assert restarted.push_to_hub() is None  # a restart does not send uploaded shards again
        cast(store)
        restarted.push_to_hub()
        assert uploaded(restarted_api) == ["votes/votes-0000000005-0000000005.jsonl"]
    finally:
        restarted.stop()
