"""Where the measured precision choice of a model on a machine is kept: one small JSON file.

    record_choice(model, {"path": "bf16", "reason": "..."})
    read_choice(model)   # the same dict, or None when this model was never measured on this machine

The file is `$COLORLAB_CACHE_DIR/precision.json` (default `~/.cache/colorlab`, or `$XDG_CACHE_HOME/colorlab`). Its
key is the network's weights digest (`models.digest.weights_digest`: sha256 over parameter and buffer names, shapes,
dtypes and bytes, plus the architecture's config) and the machine (CPU model and instruction sets, torch version,
thread count): new weights, another CPU or another thread count measure again. Writes go through a temporary file
and a rename, so a crash never leaves half a file; an unreadable file counts as empty.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from models.digest import weights_digest
from models.precision_paths import cpu_description

CACHE_ENV = "COLORLAB_CACHE_DIR"
CACHE_FILE = "precision.json"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "colorlab"


def machine_key() -> str:
    """What makes timings comparable: the CPU, torch's build and the number of threads."""
    return f"{cpu_description()}; torch {torch.__version__}; {torch.get_num_threads()} threads"


def _key(model: nn.Module) -> str:
    return f"{weights_digest(model)} | {machine_key()}"


def _read_all(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_choice(model: nn.Module) -> dict | None:
    """The recorded choice for this model's weights on this machine, or None."""
    recorded = _read_all(cache_dir() / CACHE_FILE)
    if not recorded:  # nothing measured here: skip hashing every weight (the app asks this for each model at start)
        return None
    entry = recorded.get(_key(model))
    return entry if isinstance(entry, dict) and isinstance(entry.get("path"), str) else None


def record_choice(model: nn.Module, entry: dict) -> Path:
    """Store `entry` (with at least "path") for this model and machine; returns the file written."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CACHE_FILE
    data = _read_all(path)
    data[_key(model)] = entry
    handle, temporary = tempfile.mkstemp(prefix=".precision.", suffix=".json", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
