"""Durability: the app process killed with SIGKILL in the middle of a stream of votes loses no acknowledged vote.

app.py runs as its own process (as on a Space); a voter thread casts votes through gradio_client and
counts each one the server acknowledged (the reveal came back). The server is killed with SIGKILL
while votes are still flowing; afterwards the SQLite database must hold at least every acknowledged
vote (a vote committed just before the kill but not yet acknowledged may also be there) and pass
SQLite's integrity check.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from app_support import REPO_ROOT, free_port, save_tiny_models
from gradio_client import Client

KILL_AFTER_ACKS = 6


@pytest.mark.slow  # several processes for seconds each; CI still runs it (-m 'not slow' skips it)
def test_sigkill_during_a_vote_stream_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    config = save_tiny_models(tmp_path / "models", ("pix2pix_tiny", "unet_tiny"))
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORLAB_")}
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        COLORLAB_MODELS=str(config),
        COLORLAB_DATA_DIR=str(data_dir),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",  # the "Running on local URL" line must reach the log file before we wait for it
        TMPDIR=str(tmp_path),  # SIGKILL skips the app's exit cleanup of its temporary outputs
    )
    log = tmp_path / "app.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    acknowledged: list[str] = []
    stop = threading.Event()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while f"Running on local URL:  {url}" not in log.read_text():
            assert server.poll() is None, f"app.py exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"app.py did not start:\n{log.read_text()}"
            time.sleep(0.2)
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))

        def vote_stream() -> None:
            while not stop.is_set():
                try:
                    client.predict(None, False, api_name="/arena_next")
                    reveal = client.predict(3, 4, api_name="/vote_a")
                except Exception:  # the server is gone: what was acknowledged so far is what counts
                    return
                acknowledged.append(reveal)

        voter = threading.Thread(target=vote_stream, daemon=True)
        voter.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER_ACKS:
            assert voter.is_alive(), f"the voter stopped early:\n{log.read_text()}"
            assert time.monotonic() < deadline, "votes were not acknowledged in time"
            time.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: the voter is still casting votes
        server.wait(timeout=30)
        stop.set()
        voter.join(timeout=60)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)

    acked = len(acknowledged)
    assert acked >= KILL_AFTER_ACKS
    with sqlite3.connect(data_dir / "ratings.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = db.execute("SELECT COUNT(*), SUM(rating_a = 3 AND rating_b = 4) FROM votes").fetchone()
    assert stored[0] >= acked, f"{acked} votes were acknowledged but only {stored[0]} survived the SIGKILL"
    assert stored[1] == stored[0], "every stored vote carries the ratings the voter gave"
