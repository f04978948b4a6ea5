"""Shared pytest fixtures: offline environment, scikit-image's bundled photos, tiny saved colorizers.

Run the tests of one area with `.venv/bin/python -m pytest tests/test_X.py -q -x`.
"""

from __future__ import annotations

import os

# Set before anything imports huggingface_hub / datasets / gradio (they read these once, at import):
# the tests must never reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Tiny models gain nothing from a second thread, and on a shared 2-core machine OpenMP threads that
# spin-wait for a busy core made a 32-px forward pass 40x slower (1 s instead of 0.02 s).
torch.set_num_threads(1)

# Real photographs shipped inside scikit-image (no download): colour ones and a real grayscale one.
COLOR_PHOTOS = ("astronaut", "coffee", "chelsea")
GRAY_PHOTOS = ("camera",)


@functools.cache
def _skimage_array(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def load_photo(name: str, max_side: int | None = None) -> Image.Image:
    """A scikit-image photo as a PIL image, optionally downscaled so its longer side is `max_side`."""
    image = Image.fromarray(_skimage_array(name))
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return image


@pytest.fixture
def photo() -> Callable[..., Image.Image]:
    """`photo("astronaut", 128)` -> PIL image (fresh copy each call, so tests may mutate it)."""
    return load_photo


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin has set up its base folder
def pytest_configure(config: pytest.Config) -> None:
    """Send every temporary file of the session into pytest's own temporary folder.

    gradio_client downloads into `tempfile` folders and the app's caches into GRADIO_TEMP_DIR (default /tmp/gradio);
    without this every `make test` left ~28 empty folders in /tmp and ~25 in /tmp/gradio. Set here, before any test
    module imports gradio or datasets (they read GRADIO_TEMP_DIR / HF_DATASETS_CACHE once, at import), and as TMPDIR
    for subprocesses (trainer, app).
    """
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:  # the tmpdir plugin is disabled (-p no:tmpdir): leave the defaults
        return
    session_tmp = factory.getbasetemp() / "session-tmp"
    (session_tmp / "gradio").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(session_tmp)
    os.environ["GRADIO_TEMP_DIR"] = str(session_tmp / "gradio")
    # datasets caches every image folder / parquet / csv it reads (arrow files) under ~/.cache: keep them here too.
    os.environ["HF_DATASETS_CACHE"] = str(session_tmp / "hf-datasets")
    # models.precision records measured choices under ~/.cache/colorlab: a developer's choices must not steer the
    # tests, and the tests must not write theirs there
    os.environ["COLORLAB_CACHE_DIR"] = str(session_tmp / "colorlab-cache")
    tempfile.tempdir = str(session_tmp)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    # Tiny models are built with random weights; a fixed seed keeps every test deterministic.
    torch.manual_seed(0)


@pytest.fixture
def tiny_model():
    from models.registry import create_model

    return create_model("pix2pix_tiny").eval()


@pytest.fixture
def tiny_model_dir(tmp_path: Path, tiny_model) -> Path:
    """A pix2pix_tiny saved in Hub format under tmp_path/tiny-colorizer."""
    folder = tmp_path / "tiny-colorizer"
    tiny_model.save_pretrained(folder)
    return folder


def lightness_of(image: Image.Image) -> np.ndarray:
    """CIELAB L (H, W) of an 8-bit RGB/RGBA/L image, computed by scikit-image (independent of models.color)."""
    from skimage.color import rgb2lab

    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    return rgb2lab(rgb)[..., 0]
