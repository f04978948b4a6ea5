"""python benchmarks/bench_app_load.py [--concurrency 1 2] [--users 20 --calls 5 --voters 20 --rounds 3]

Load test of the Gradio app on this machine: app.py runs in its own process (as on a Space) and
gradio_client users hit it from threads here.

1. colorize: `--users` concurrent users each make `--calls` /colorize calls (all served models,
   working size 256) on real photos shipped with scikit-image;
2. arena: `--voters` concurrent voters each play `--rounds` rounds (/arena_next, then a vote with a
   rating).

It prints p50/p95 latency per endpoint, errors, and checks that every acknowledged vote is stored
exactly once (same models, verdict and rating as the voter saw revealed, no extras). Models: by
default untrained full-size networks of the three default families (latency does not depend on the
weight values; nothing here measures quality); `--models FILE` serves a model list instead.
Each `--concurrency` value (COLORLAB_CONCURRENCY: colorize/arena requests computed at once) is a
separate run against a fresh app and ratings database.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

FULL_SIZE = {"pix2pix": "pix2pix_unet256", "unet_l1": "unet", "autoencoder": "autoencoder"}
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
CHOICES = ("a", "b", "tie", "both_bad")
REVEAL = re.compile(r"A was \*\*(.+?)\*\*, B was \*\*(.+?)\*\*")


def write_full_size_models(folder: Path) -> Path:
    import torch

    from models.registry import create_model

    entries = []
    for name, variant in FULL_SIZE.items():
        torch.manual_seed(0)
        model = create_model(variant)
        model.card_data["notes"] = "Untrained: built by benchmarks/bench_app_load.py to time the app, not to judge it."
        model.save_pretrained(folder / name)
        entries.append({"name": name, "source": str(folder / name)})
    config = folder / "models.yaml"
    config.write_text(yaml.safe_dump({"models": entries}))
    return config


def start_app(config: Path, data_dir: Path, concurrency: int, log: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, COLORLAB_MODELS=str(config), COLORLAB_DATA_DIR=str(data_dir))
    env.update(COLORLAB_CONCURRENCY=str(concurrency), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    # The same malloc settings as `make demo` (measured 2-4x faster for torch here).
    env.update(MALLOC_MMAP_THRESHOLD_="33554432", MALLOC_TRIM_THRESHOLD_="10000000000", MALLOC_TOP_PAD_="1073741824")
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    while f"Running on local URL:  {url}" not in log.read_text():
        if server.poll() is not None:
            raise SystemExit(f"error: the app exited before serving:\n{log.read_text()}")
        time.sleep(0.2)
    return server, url


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.reveals: Counter[tuple] = Counter()
        self._lock = threading.Lock()

    def timed(self, endpoint: str, call):
        started = time.perf_counter()
        try:
            result = call()
        except Exception as error:  # every failure is counted and reported, none may stop the other users
            with self._lock:
                self.errors.append(f"{endpoint}: {type(error).__name__}: {error}")
            return None
        with self._lock:
            self.latency[endpoint].append(time.perf_counter() - started)
        return result

    def revealed(self, vote: tuple) -> None:
        with self._lock:
            self.reveals[vote] += 1


def colorize_user(url: str, photos: list[Path], models: list[str], calls: int, index: int, rec: Recorder) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    for call in range(calls):
        photo = handle_file(str(photos[(index + call) % len(photos)]))
        rec.timed("colorize", lambda p=photo: client.predict(p, models, 256, 1.0, api_name="/colorize"))


def voter(url: str, rounds: int, index: int, rec: Recorder) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    for round_ in range(rounds):
        if rec.timed("arena_next", lambda: client.predict(None, False, api_name="/arena_next")) is None:
            continue
        choice, rating = CHOICES[(index + round_) % 4], 1 + (index + round_) % 5
        reveal = rec.timed(f"vote_{choice}", lambda c=choice, r=rating: client.predict(r, None, api_name=f"/vote_{c}"))
        if reveal is not None:
            model_a, model_b = REVEAL.search(reveal).groups()
            rec.revealed((model_a, model_b, choice, rating))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(config: Path, concurrency: int, args: argparse.Namespace, work: Path) -> dict:
    import skimage

    from judge.ratings import RatingsStore
    from space.model_pool import read_config_file

    models = [spec.name for spec in read_config_file(config)]
    photos_dir = Path(skimage.__file__).parent / "data"
    photos = [photos_dir / name for name in PHOTOS]
    data_dir = work / f"data-c{concurrency}"
    server, url = start_app(config, data_dir, concurrency, work / f"app-c{concurrency}.log")
    rec = Recorder()
    try:
        phases = {}
        for phase, task, count in (
            ("colorize", lambda i: colorize_user(url, photos, models, args.calls, i, rec), args.users),
            ("arena", lambda i: voter(url, args.rounds, i, rec), args.voters),
        ):
            started = time.perf_counter()
            with ThreadPoolExecutor(count) as pool:
                list(pool.map(task, range(count)))
            phases[phase] = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    with RatingsStore(data_dir) as store:
        stored = Counter((v.model_a, v.model_b, v.winner, v.rating_a) for v in store.votes())
    return {"concurrency": concurrency, "rec": rec, "phases": phases, "stored": stored}


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nCPU: {os.cpu_count()} cores; {args.users} users x {args.calls} /colorize, {args.voters} voters x "
        f"{args.rounds} rounds (/arena_next + vote)"
    )
    print("| concurrency | endpoint | calls | p50 s | p95 s | errors |")
    print("|---|---|---|---|---|---|")
    for result in results:
        rec = result["rec"]
        latency = dict(rec.latency)
        latency["vote"] = [t for name in list(latency) if name.startswith("vote_") for t in latency.pop(name)]
        for endpoint, values in latency.items():
            errors = sum(e.startswith(endpoint) for e in rec.errors)
            p50, p95 = percentile(values, 50), percentile(values, 95)
            print(f"| {result['concurrency']} | {endpoint} | {len(values)} | {p50:.2f} | {p95:.2f} | {errors} |")
    for result in results:
        rec = result["rec"]
        exact = result["stored"] == rec.reveals
        phases = ", ".join(f"{name} phase {seconds:.0f} s" for name, seconds in result["phases"].items())
        print(
            f"concurrency {result['concurrency']}: {len(rec.errors)} errors; {sum(rec.reveals.values())} votes "
            f"acknowledged, {sum(result['stored'].values())} stored, each exactly once: {exact}; {phases}"
        )
        for error in rec.errors[:5]:
            print(f"  {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--voters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", type=Path, help="model list to serve (default: untrained full-size defaults)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="colorlab-bench-") as tmp:
        work = Path(tmp)
        config = args.models or write_full_size_models(work / "models")
        results = [run(config, concurrency, args, work) for concurrency in args.concurrency]
    report(results, args)
    failed = any(r["rec"].errors or r["stored"] != r["rec"].reveals for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
