"""python -m judge.ratings export --format jsonl|csv|parquet [--data_dir DIR] [--out FILE]

The blind A/B arena's ratings store: one SQLite database (standard library, WAL mode) in the data
folder (``COLORLAB_DATA_DIR``; see ``default_data_dir``).

API (everything the app needs)::

    store = RatingsStore(data_dir, models=["pix2pix", "unet"])     # or store.set_models([...]) later
    pair = store.issue_pair("pix2pix", "unet", image_sha256(png_bytes), voter=voters.voter(request))
    # show pair.model_a's image as "A" and pair.model_b's as "B" (the server chose the sides);
    # keep pair.token server-side (gr.State) and never show the model names before the vote.
    vote = store.record_vote(pair.token, "a", voter=voters.voter(request), rating_a=4, rating_b=None)
    store.store_image(sha, png_bytes, consent=True)                # writes nothing without consent
    store.votes()                                                  # list[Vote] for judge.leaderboard

``choice`` is one of ``CHOICES`` ("a", "b", "tie", "both_bad"); ratings are optional integers 1-5.
Every refusal raises a ``RatingsError`` subclass whose message is one sentence a user can act on:
``InvalidToken``, ``TokenUsed``, ``TokenExpired``, ``RateLimited``, ``UnknownModel``, and the
``BadInput`` family (``BadChoice``, ``BadRating``, also a ``ValueError``).

Why votes cannot be forged or repeated: every shown pair gets a random one-time token stored with
its models, sides, image hash, voter and time; a vote names only the token, so a client cannot pick
the models, and the token is consumed in the same transaction that inserts the vote.

Privacy: voters are stored as salted HMAC-SHA256 ids of whatever identifier the app passes (IP or
session hash), never raw; the salt comes from ``COLORLAB_VOTER_SALT`` or a 0600 file created once
in the data folder. Uploaded images are kept only as sha256 unless the user ticks consent.

Threads and processes: safe to call from Gradio's worker threads (a small pool hands each call its own
SQLite connection); every write runs in ``BEGIN IMMEDIATE``, so checks and inserts are atomic across
threads and processes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import random
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, astuple, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

CHOICES = ("a", "b", "tie", "both_bad")
DB_NAME = "ratings.sqlite3"
SALT_NAME = "voter_salt"
IMAGES_DIR = "images"


class RatingsError(Exception):
    """A vote or pair the store refuses; the message is one sentence saying what to do."""


class InvalidToken(RatingsError):
    pass


class TokenUsed(RatingsError):
    pass


class TokenExpired(RatingsError):
    pass


class RateLimited(RatingsError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnknownModel(RatingsError):
    pass


class BadInput(RatingsError, ValueError):
    pass


class BadChoice(BadInput):
    pass


class BadRating(BadInput):
    pass


@dataclass(frozen=True)
class PairToken:
    """One shown pair: ``model_a`` is displayed as "A", ``model_b`` as "B"."""

    token: str
    model_a: str
    model_b: str
    image_sha256: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class Vote:
    """One stored vote; ``winner`` refers to the displayed sides (``model_a`` was "A")."""

    vote_id: int
    created_at: float
    model_a: str
    model_b: str
    winner: str
    rating_a: int | None
    rating_b: int | None
    image_sha256: str
    voter_id: str

    def to_row(self) -> dict:
        """Export row: the same fields with ``created_at`` as an ISO-8601 UTC string."""
        row = asdict(self)
        row["created_at"] = datetime.fromtimestamp(self.created_at, timezone.utc).isoformat(timespec="milliseconds")
        return row


VOTE_COLUMNS = tuple(f.name for f in fields(Vote))  # same names in the votes table, but "id" for vote_id

# --- schema: PRAGMA user_version = number of migrations applied ---------------------------------------------------
# Append new migrations at the end; never edit one that has shipped. A fresh database runs them all, so the
# upgrade path is exercised by every test that opens a store.


def _v1_initial(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE pairs (
            token TEXT PRIMARY KEY,
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            image_sha256 TEXT NOT NULL,
            voter_id TEXT NOT NULL,
            issued_at REAL NOT NULL,
            used_at REAL
        )"""
    )
    # AUTOINCREMENT: vote ids are never reused, so "votes after id N" is a safe sync watermark.
    conn.execute(
        """CREATE TABLE votes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token TEXT NOT NULL UNIQUE REFERENCES pairs(token),
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'tie', 'both_bad')),
            image_sha256 TEXT NOT NULL,
            voter_id TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )


def _v2_ratings(conn: sqlite3.Connection) -> None:
    # Per-image 1-5 ratings (MOS); NULL when the user gave none. The index serves the rate-limit query.
    conn.execute("ALTER TABLE votes ADD COLUMN rating_a INTEGER CHECK (rating_a BETWEEN 1 AND 5)")
    conn.execute("ALTER TABLE votes ADD COLUMN rating_b INTEGER CHECK (rating_b BETWEEN 1 AND 5)")
    conn.execute("CREATE INDEX votes_by_voter_time ON votes (voter_id, created_at)")


def _v3_pair_limits(conn: sqlite3.Connection) -> None:
    # Serve the per-voter and global "next pair" rate limits, the global vote cap and the pruning of unvoted pairs.
    conn.execute("CREATE INDEX pairs_by_voter_time ON pairs (voter_id, issued_at)")
    conn.execute("CREATE INDEX pairs_unvoted_by_time ON pairs (issued_at) WHERE used_at IS NULL")
    conn.execute("CREATE INDEX votes_by_time ON votes (created_at)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1_initial, _v2_ratings, _v3_pair_limits)
SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(conn: sqlite3.Connection) -> None:
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read the version inside the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RatingsError(
                    f"The ratings database has schema v{version} but this code knows up to v{SCHEMA_VERSION}; "
                    "upgrade ColorLab before opening it."
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# --- helpers -------------------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``COLORLAB_DATA_DIR``; else ``/data`` on a Space with persistent storage; else ``./data``."""
    env = os.environ.get("COLORLAB_DATA_DIR")
    if env:
        return Path(env)
    persistent = Path("/data")
    if os.environ.get("SPACE_ID") and persistent.is_dir() and os.access(persistent, os.W_OK):
        return persistent
    return Path("data")


def image_sha256(data: bytes) -> str:
    """The hash the store keeps instead of the image (hex sha256 of the bytes)."""
    return hashlib.sha256(data).hexdigest()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_rating(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise BadRating(f"{name} must be a whole number from 1 to 5 or empty, not {value!r}.")
    return value


def _limit_wait(
    conn: sqlite3.Connection, limit: tuple[int, float], now: float, table: str, column: str, voter_id: str | None
) -> float | None:
    """Seconds to wait when `table` already has `limit[0]` rows (of `voter_id`, or of everyone) in the last
    `limit[1]` s; None when under the limit."""
    count_max, window = limit
    where = f"{column} > ?" + (" AND voter_id = ?" if voter_id is not None else "")
    args = (now - window, voter_id) if voter_id is not None else (now - window,)
    count, oldest = conn.execute(f"SELECT COUNT(*), MIN({column}) FROM {table} WHERE {where}", args).fetchone()
    return max(oldest + window - now, 0.0) if count >= count_max else None


def _refuse(wait: float | None, message: str) -> None:
    if wait is not None:
        raise RateLimited(f"{message}; try again in {math.ceil(wait)} s.", wait)


def _image_suffix(data: bytes) -> str:
    for magic, suffix in ((b"\x89PNG", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"RIFF", ".webp")):
        if data.startswith(magic):
            return suffix
    return ".bin"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file whole or not at all (temp file in the same folder, fsync, rename), so a crash never truncates."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class RatingsStore:
    """SQLite ratings store in ``data_dir``; see the module docstring for the API."""

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        *,
        models: Iterable[str] | None = None,
        salt: str | bytes | None = None,
        token_ttl_s: float = 3600.0,
        rate_limit: tuple[int, float] | None = (30, 60.0),
        pair_limit: tuple[int, float] | None = None,
        global_pair_limit: tuple[int, float] | None = None,
        global_vote_limit: tuple[int, float] | None = None,
        busy_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token_ttl_s <= 0:
            raise ValueError(f"token_ttl_s must be positive, not {token_ttl_s}.")
        for name, limit in (
            ("rate_limit", rate_limit),
            ("pair_limit", pair_limit),
            ("global_pair_limit", global_pair_limit),
            ("global_vote_limit", global_vote_limit),
        ):
            if limit is not None and (limit[0] < 1 or limit[1] <= 0):
                raise ValueError(f"{name} must be (count >= 1, seconds > 0) or None, not {limit}.")
        # Per voter: votes (rate_limit) and pairs shown (pair_limit: each costs two model runs); for everyone
        # together: pairs and votes, so many identities at once cannot flood the arena either.
        self.pair_limit = pair_limit
        self.global_pair_limit = global_pair_limit
        self.global_vote_limit = global_vote_limit
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / DB_NAME
        self.token_ttl_s = float(token_ttl_s)
        self.rate_limit = rate_limit
        self.busy_timeout_s = busy_timeout_s
        self._clock = clock
        self._salt = salt.encode() if isinstance(salt, str) else salt
        self._models: frozenset[str] | None = None
        self._idle: list[sqlite3.Connection] = []  # the pool: connections no thread is using right now
        self._lock = threading.Lock()
        self._closed = False
        self._sides = random.SystemRandom()
        if models is not None:
            self.set_models(models)
        with self._connection() as conn:
            _migrate(conn)

    # -- connections ------------------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False because a pooled connection moves between worker threads; the pool hands each
        # to one thread at a time. (Not one connection per thread-local: anyio retires idle worker threads, and
        # SQLite keeps a closed connection's file open while another connection in the process holds a lock,
        # so per-thread connections leak one open file per retired thread.)
        conn = sqlite3.connect(
            self.db_path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: every COMMIT fsyncs the WAL, so an acknowledged vote survives SIGKILL and power loss alike
        # (NORMAL would survive SIGKILL but not power loss); votes are rare enough that the fsync costs nothing.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread alone until the block ends (the pool grows to the peak concurrency)."""
        with self._lock:
            if self._closed:
                raise RatingsError("This ratings store was closed; open a new RatingsStore.")
            conn = self._idle.pop() if self._idle else None
        conn = conn or self._open()
        try:
            yield conn
        finally:
            if conn.in_transaction:  # never hand on a connection that is inside someone's transaction
                conn.execute("ROLLBACK")
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock first: checks and writes see one state
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the pooled connections (ones in use close when their call ends); the store is then unusable."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> RatingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._connection() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    # -- voters and models ------------------------------------------------------------------------------------------

    def _salt_bytes(self) -> bytes:
        # Loaded lazily so that exporting never creates a salt file.
        if self._salt is None:
            env = os.environ.get("COLORLAB_VOTER_SALT")
            self._salt = env.encode() if env else self._salt_from_file()
        return self._salt

    def _salt_from_file(self) -> bytes:
        path = self.data_dir / SALT_NAME
        if not path.exists():
            tmp = path.with_name(f".{SALT_NAME}.{secrets.token_hex(4)}.tmp")
            atomic_write(tmp, secrets.token_hex(32).encode(), mode=0o600)
            try:
                os.link(tmp, path)  # atomic create-if-absent: concurrent first starts agree on one salt
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        salt = path.read_bytes().strip()
        if len(salt) < 16:
            raise RatingsError(f"The voter salt file {path} is empty or truncated; restore it from a backup.")
        return salt

    def voter_id(self, identifier: str) -> str:
        """Salted hash of an IP or session id; the only form in which voters are stored."""
        if not identifier:
            raise BadInput("The voter identifier is empty; pass the request's session hash or client IP.")
        return hmac.new(self._salt_bytes(), identifier.encode(), hashlib.sha256).hexdigest()[:32]

    def set_models(self, models: Iterable[str]) -> None:
        """The models pairs may be issued for and votes may count for (the app's loaded colorizers)."""
        self._models = frozenset(models)

    def _check_models(self, *names: str) -> None:
        known = self._models or frozenset()
        for name in names:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none; call set_models() first"
                raise UnknownModel(f"Model {name!r} is not served by this arena (known: {listed}).")

    # -- pairs and votes --------------------------------------------------------------------------------------------

    def issue_pair(self, model_a: str, model_b: str, image_sha256: str, *, voter: str) -> PairToken:
        """Record a pair about to be shown and return its one-time token; the sides are chosen at random here."""
        self._check_models(model_a, model_b)
        if model_a == model_b:
            raise BadInput(f"A pair needs two different models, got {model_a!r} twice.")
        if not _is_sha256(image_sha256):
            raise BadInput("image_sha256 must be 64 lowercase hex characters; compute it with image_sha256(bytes).")
        if self._sides.random() < 0.5:
            model_a, model_b = model_b, model_a
        voter_id = self.voter_id(voter)
        token = secrets.token_urlsafe(24)
        now = self._clock()
        with self._write() as conn:
            # Pairs never voted on are useless once their token expired: prune them so they do not pile up.
            conn.execute("DELETE FROM pairs WHERE used_at IS NULL AND issued_at < ?", (now - self.token_ttl_s,))
            self._check_pair_rate(conn, voter_id, now)
            conn.execute(
                "INSERT INTO pairs (token, model_a, model_b, image_sha256, voter_id, issued_at) VALUES (?,?,?,?,?,?)",
                (token, model_a, model_b, image_sha256, voter_id, now),
            )
        return PairToken(token, model_a, model_b, image_sha256, now, now + self.token_ttl_s)

    def record_vote(
        self, token: str, choice: str, *, voter: str, rating_a: int | None = None, rating_b: int | None = None
    ) -> Vote:
        """Check the token and the voter, then store the vote; when this returns the vote is on disk."""
        if choice not in CHOICES:
            raise BadChoice(f"The choice must be one of {', '.join(CHOICES)}, not {choice!r}.")
        rating_a = _check_rating("rating_a", rating_a)
        rating_b = _check_rating("rating_b", rating_b)
        voter_id = self.voter_id(voter)
        with self._write() as conn:
            now = self._clock()
            pair = conn.execute("SELECT * FROM pairs WHERE token = ?", (token,)).fetchone()
            if pair is None or not hmac.compare_digest(pair["voter_id"], voter_id):
                raise InvalidToken("This vote does not match a pair shown to you; load a new pair and vote again.")
            if pair["used_at"] is not None:
                raise TokenUsed("This pair was already voted on; load a new pair to vote again.")
            if now - pair["issued_at"] > self.token_ttl_s:
                raise TokenExpired("This pair was shown too long ago to accept a vote; load a new pair.")
            self._check_models(pair["model_a"], pair["model_b"])
            self._check_rate(conn, voter_id, now)
            conn.execute("UPDATE pairs SET used_at = ? WHERE token = ?", (now, token))
            vote = Vote(
                0, now, pair["model_a"], pair["model_b"], choice, rating_a, rating_b, pair["image_sha256"], voter_id
            )
            cur = conn.execute(
                f"INSERT INTO votes (token, {', '.join(VOTE_COLUMNS[1:])}) VALUES (?,?,?,?,?,?,?,?,?)",
                (token, *astuple(vote)[1:]),
            )
        return replace(vote, vote_id=cur.lastrowid)

    def check_pair_allowed(self, voter: str) -> None:
        """Raise RateLimited now if `voter` may not be shown a new pair (call before the costly colorizing)."""
        voter_id = self.voter_id(voter)
        with self._connection() as conn:
            self._check_pair_rate(conn, voter_id, self._clock())

    def _check_pair_rate(self, conn: sqlite3.Connection, voter_id: str, now: float) -> None:
        for limit, voter, message in (
            (self.pair_limit, voter_id, "Too many new pairs: at most {n} every {w:g} s"),
            (self.global_pair_limit, None, "The arena is busy: at most {n} new pairs for everyone every {w:g} s"),
        ):
            if limit is not None:
                wait = _limit_wait(conn, limit, now, "pairs", "issued_at", voter)
                _refuse(wait, message.format(n=limit[0], w=limit[1]))

    def _check_rate(self, conn: sqlite3.Connection, voter_id: str, now: float) -> None:
        for limit, voter, message in (
            (self.rate_limit, voter_id, "Too many votes: at most {n} every {w:g} s"),
            (self.global_vote_limit, None, "The arena is busy: at most {n} votes from everyone every {w:g} s"),
        ):
            if limit is not None:
                wait = _limit_wait(conn, limit, now, "votes", "created_at", voter)
                _refuse(wait, message.format(n=limit[0], w=limit[1]))

    def votes(self, *, after_id: int = 0) -> list[Vote]:
        """All votes in id order (or those with ``vote_id > after_id``)."""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT id, {', '.join(VOTE_COLUMNS[1:])} FROM votes WHERE id > ? ORDER BY id", (after_id,)
            ).fetchall()
        return [Vote(*row) for row in rows]

    # -- images -----------------------------------------------------------------------------------------------------

    def store_image(self, image_sha256: str, data: bytes, *, consent: bool) -> Path | None:
        """Keep an uploaded image only if the user ticked consent; returns its path, or None when not kept."""
        if not consent:
            return None
        if hashlib.sha256(data).hexdigest() != image_sha256:
            raise BadInput("The image bytes do not match image_sha256; hash exactly the bytes you store.")
        folder = self.data_dir / IMAGES_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{image_sha256}{_image_suffix(data)}"
        if not path.exists():
            atomic_write(path, data)
        return path


# --- CLI: python -m judge.ratings export ... (the code lives with the formats, in judge.export) -----------------
# Imported only when this file runs as the program: then it is the module `__main__`, and judge.export imports this
# file afresh as `judge.ratings`, so the store never depends on its exporter.
if __name__ == "__main__":
    from judge.export import main

    sys.exit(main())
