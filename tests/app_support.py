"""Helpers shared by the app tests (tests/test_app_*.py, tests/test_deploy.py, tests/browser/).

Tiny colorizers are built in code and saved in Hub format under tmp_path; the app is imported
fresh from app.py with COLORLAB_MODELS / COLORLAB_DATA_DIR pointing there, and launched on
127.0.0.1 with a free port.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_VARIANTS = ("pix2pix_tiny", "unet_tiny", "autoencoder_tiny")


def save_tiny_models(folder: Path, variants: Sequence[str] = TINY_VARIANTS) -> Path:
    """Save tiny models (seeded random weights) as Hub folders and write a models.yaml listing them."""
    from models.registry import create_model

    entries = []
    for seed, variant in enumerate(variants):
        torch.manual_seed(seed)
        model = create_model(variant)
        model.card_data.update(dataset="tests/tiny", notes="Tiny test model.")
        model.save_pretrained(folder / variant)
        entries.append({"name": variant.removesuffix("_tiny"), "source": str(folder / variant)})
    config = folder / "models.yaml"
    config.write_text(yaml.safe_dump({"models": entries}), encoding="utf-8")
    return config


def load_app(monkeypatch, tmp_path: Path, config: Path, **env: str) -> ModuleType:
    """Execute app.py as a fresh module with its models and data folder under tmp_path."""
    monkeypatch.setenv("COLORLAB_MODELS", str(config))
    monkeypatch.setenv("COLORLAB_DATA_DIR", str(tmp_path / "data"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    name = f"colorlab_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched(app_module: ModuleType) -> Iterator[str]:
    """Serve the module's demo on 127.0.0.1 (never another address) and yield its URL."""
    demo = app_module.demo
    demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **app_module.launch_options(),
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
        app_module.CONTEXT.store.close()
