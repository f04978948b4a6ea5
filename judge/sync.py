"""Append-only sync of arena votes to a Hub dataset; the app starts it once next to its RatingsStore.

    sync = start_hub_sync(store)   # None unless COLORLAB_RATINGS_REPO and HF_TOKEN are set
    ...                            # runs in a background thread; also pushes once more at interpreter exit
    sync.stop()

Every ``COLORLAB_SYNC_MINUTES`` (default 10) the votes committed since the last shard are written to a new
shard ``votes-<first id>-<last id>.jsonl`` in ``<data_dir>/hub_sync/``, and ``huggingface_hub.CommitScheduler``
uploads the shards it has not uploaded yet to ``votes/`` in the dataset repo. Shards are never rewritten, so
the dataset only ever grows.

Crash safety: a shard appears whole or not at all (written to a temp file, then renamed), and the next shard
starts after the highest vote id named by an existing shard, so every vote lands in exactly one shard even
across crashes. Which shards were uploaded is kept in ``<data_dir>/hub_sync_state.json``, so a restart does not
send them again, and a shard whose upload failed is retried at the next round.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from pathlib import Path

from huggingface_hub import CommitInfo, CommitScheduler, HfApi

from judge.export import write_jsonl
from judge.ratings import RatingsStore, atomic_write

SYNC_DIR = "hub_sync"
STATE_NAME = "hub_sync_state.json"
PATH_IN_REPO = "votes"
logger = logging.getLogger(__name__)


def _last_synced_id(folder: Path) -> int:
    # Shard names are votes-<first>-<last>.jsonl; vote ids only grow (AUTOINCREMENT) and commit in id order
    # (writes are serialized by BEGIN IMMEDIATE), so the highest <last> is the watermark.
    return max((int(path.stem.split("-")[2]) for path in folder.glob("votes-*-*.jsonl")), default=0)


class VoteShardScheduler(CommitScheduler):
    """A CommitScheduler that cuts a new JSONL shard of new votes before each scheduled upload."""

    def __init__(
        self,
        store: RatingsStore,
        *,
        repo_id: str,
        token: str | None = None,
        every_minutes: float = 10,
        hf_api: HfApi | None = None,
    ) -> None:
        # Set before super().__init__, which starts the thread that calls push_to_hub.
        self.store = store
        self.state_path = store.data_dir / STATE_NAME
        self._shard_lock = threading.Lock()
        self._state_loaded = False
        super().__init__(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=store.data_dir / SYNC_DIR,
            path_in_repo=PATH_IN_REPO,
            every=every_minutes,
            token=token,
            hf_api=hf_api,
            private=True,  # only when the repo is new: votes carry hashed voter ids, so share them deliberately
            allow_patterns=["votes-*.jsonl"],  # never the temp files of a shard being written
        )

    def write_shard(self) -> Path | None:
        """Write the votes not in any shard yet to a new shard; None when there are none."""
        votes = self.store.votes(after_id=_last_synced_id(self.folder_path))
        if not votes:
            return None
        path = self.folder_path / f"votes-{votes[0].vote_id:010d}-{votes[-1].vote_id:010d}.jsonl"
        text = io.StringIO()
        write_jsonl((vote.to_row() for vote in votes), text)
        atomic_write(path, text.getvalue().encode("utf-8"))
        return path

    def push_to_hub(self) -> CommitInfo | None:
        with self._shard_lock:
            if not self._state_loaded:
                self._load_state()
            self.write_shard()
        info = super().push_to_hub()  # uploads only shards not uploaded yet
        if info is not None:
            self._save_state()
        return info

    def _load_state(self) -> None:
        self._state_loaded = True
        if not self.state_path.is_file():
            return
        try:
            uploaded = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as err:  # a lost state only means re-sending identical shards
            logger.warning("Ignoring unreadable %s (%s); shards will be uploaded again.", self.state_path, err)
            return
        for name, mtime in uploaded.items():
            self.last_uploaded.setdefault(self.folder_path / name, mtime)

    def _save_state(self) -> None:
        uploaded = {path.name: mtime for path, mtime in self.last_uploaded.items()}
        atomic_write(self.state_path, json.dumps(uploaded, indent=0, sort_keys=True).encode())


def start_hub_sync(
    store: RatingsStore,
    repo_id: str | None = None,
    token: str | None = None,
    *,
    every_minutes: float | None = None,
    hf_api: HfApi | None = None,
) -> VoteShardScheduler | None:
    """Start syncing votes to ``repo_id`` (default ``COLORLAB_RATINGS_REPO``) with ``token`` (default ``HF_TOKEN``).

    Returns None, and syncs nothing, unless both are set. ``hf_api`` is for tests (a mocked ``HfApi``).
    """
    repo_id = repo_id or os.environ.get("COLORLAB_RATINGS_REPO")
    token = token or os.environ.get("HF_TOKEN")
    if not repo_id or not token:
        logger.info("Hub sync of votes is off: set COLORLAB_RATINGS_REPO and HF_TOKEN to turn it on.")
        return None
    if every_minutes is None:
        raw = os.environ.get("COLORLAB_SYNC_MINUTES", "10")
        try:
            every_minutes = float(raw)
        except ValueError:
            raise ValueError(f"COLORLAB_SYNC_MINUTES must be a number of minutes, not {raw!r}.") from None
    return VoteShardScheduler(store, repo_id=repo_id, token=token, every_minutes=every_minutes, hf_api=hf_api)
