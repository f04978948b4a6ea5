"""What a saved colorizer folder is made of, and how to get one from the Hub: the leaf every other model module reads.

    from models.hub_files import CONFIG_NAME, WEIGHTS_NAME, resolve_model_folder
    folder = resolve_model_folder("weights/pix2pix")   # a local folder as is
    folder = resolve_model_folder("user/colorizer")    # a Hub repo id, downloaded to the HF cache (needs network)

It imports nothing of ColorLab, so the networks (`models.base`), the cards and the diffusion colorizer can all
read the file names and download folders without importing the loader (`models.hub`) that sits above them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# Diffusion colorizers are diffusers pipelines: their folder has this file instead of model.safetensors.
DIFFUSION_MARKER = "colorlab_diffusion.json"
# What a download fetches: configs, safetensors, the card and its images; never pickles.
HUB_FILES = [
    CONFIG_NAME,
    WEIGHTS_NAME,
    "README.md",
    "*.png",
    DIFFUSION_MARKER,
    "model_index.json",
    "*/*.json",
    "*/*.safetensors",
    "*/*.txt",
]


@dataclass(frozen=True)
class ModelSpec:
    """One colorizer to load: its display name, where its weights are (a folder or a Hub repo id), a Hub revision."""

    name: str
    source: str
    revision: str | None = None


def looks_like_repo_id(source: str) -> bool:
    """Whether `source` has the form of a Hub repo id (user/name), as opposed to a local path."""
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "/", "~"))


def download_model_folder(repo_id: str, *, revision: str | None = None) -> Path:
    """Fetch a Hub model repo (safetensors + configs only) into the HF cache and return its folder."""
    # imported here, not at the top: huggingface_hub's download stack is only needed for Hub ids (and slow to import)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError as error:
        raise ValueError(
            f"Could not download '{repo_id}' from the Hugging Face Hub (offline or unreachable) and it is not in the "
            "local cache; pass a local model folder instead, or connect and retry."
        ) from error
    except HfHubHTTPError as error:
        raise ValueError(f"The Hub refused '{repo_id}' ({error}); check the repo id, revision and token.") from error


def resolve_model_folder(source: str | os.PathLike[str], *, revision: str | None = None) -> Path:
    """A local directory as is; otherwise a Hub repo id downloaded to the cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{source} is a file; a colorizer is a folder holding {CONFIG_NAME} and {WEIGHTS_NAME}.")
    if isinstance(source, str) and looks_like_repo_id(source):
        return download_model_folder(source, revision=revision)
    raise ValueError(f"{source} is neither a local model folder nor a Hub repo id like 'user/name'.")


def read_config(folder: Path) -> dict[str, Any]:
    """The parsed config.json of a saved (non-diffusion) colorizer folder."""
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ValueError(f"{folder} has no {CONFIG_NAME}, so it is not a saved ColorLab model.")
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file} is not valid JSON ({error}); re-save the model.") from error


def write_folder_atomically(folder: str | os.PathLike[str], write: Callable[[Path], None], *, last: str) -> Path:
    """`write(staging)` into a temporary sibling of `folder`, then move each entry into `folder` by a rename.

    A crash leaves either the previous file or the new one, never half a file; a subfolder (a diffusers component)
    is swapped whole. Other entries already in `folder` (checkpoints, sample grids, logs) are left alone. The entry
    named `last` (config.json, or the diffusion marker) moves last, so a folder only reads as the new model once
    everything else is in place, and an interrupted first save never looks like a model.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        write(staging)
        for entry in sorted(staging.iterdir(), key=lambda path: (path.name == last, path.name)):
            target = folder / entry.name
            if entry.is_dir() and target.exists():
                retired = staging / f".{entry.name}.old"  # same file system as `folder`: renames, no copies
                target.rename(retired)
                entry.rename(target)
                shutil.rmtree(retired)
            else:
                os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
