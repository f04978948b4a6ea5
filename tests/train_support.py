"""Helpers shared by the trainer tests (tests/test_train*.py, tests/test_push.py).

Datasets are folders of small JPEGs made from scikit-image's bundled photographs, optionally with
one truncated (unreadable) JPEG and one black-and-white photo stored as RGB. The trainer runs
either in-process (`run_trainer`: cheap, for loop behaviour) or as a subprocess (`trainer_env`:
for `accelerate launch`, DDP and SIGKILL tests).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

from conftest import load_photo

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = REPO_ROOT / "trainer" / "train.py"
# Real colour photographs shipped with scikit-image (no download needed).
COLOR_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
)
CORRUPT_NAME = "broken.jpg"
GRAYSCALE_NAME = "camera.jpg"


def make_photo_folder(
    folder: Path, *, max_side: int = 80, corrupt: bool = False, grayscale: bool = False, photos=COLOR_PHOTOS
) -> Path:
    """JPEGs of real photos; `corrupt` adds a truncated JPEG, `grayscale` a B&W photo saved as RGB."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in photos:
        load_photo(name, max_side).convert("RGB").save(folder / f"{name}.jpg", quality=90)
    if grayscale:
        load_photo("camera", max_side).convert("RGB").save(folder / GRAYSCALE_NAME, quality=90)
    if corrupt:
        whole = (folder / f"{photos[0]}.jpg").read_bytes()
        (folder / CORRUPT_NAME).write_bytes(whole[: len(whole) // 3])  # a download cut short
    return folder


def trainer_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """Environment for trainer subprocesses: offline, one thread per process, the measured malloc settings.

    `hf_home` isolates caches and hides any user accelerate config (the launch must work without one).
    """
    env = dict(os.environ)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        MALLOC_MMAP_THRESHOLD_="33554432",
        MALLOC_TRIM_THRESHOLD_="10000000000",
        MALLOC_TOP_PAD_="1073741824",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ACCELERATE_CONFIG_FILE", None)
    env.update(extra)
    return env


def accelerate_launch(*launch_args: str) -> list[str]:
    """`accelerate launch [launch_args] trainer/train.py` through the interpreter running the tests."""
    return [sys.executable, "-m", "accelerate.commands.launch", *launch_args, str(TRAIN_SCRIPT)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_accelerate() -> None:
    """Accelerate keeps process-wide singletons; clear them so each in-process run starts fresh."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def run_trainer(argv: list[str]) -> Path:
    """Parse `argv` like the command line and run `trainer.train.main` in this process."""
    from trainer.train import main, parse_args

    reset_accelerate()
    try:
        return main(parse_args(argv))
    finally:
        reset_accelerate()


def run_cli(argv: list[str]) -> int:
    """`trainer.train.cli` in this process: the exit status a user would see (errors printed to stderr)."""
    from trainer.train import cli

    reset_accelerate()
    try:
        return cli(argv)
    finally:
        reset_accelerate()


def final_digests(output_dir: Path) -> list[str]:
    """sha256 of the final generator per rank, from logs/final_weights.txt ("rank R: DIGEST" lines)."""
    lines = (output_dir / "logs" / "final_weights.txt").read_text().splitlines()
    return [re.fullmatch(r"rank \d+: ([0-9a-f]{64})", line).group(1) for line in lines]
