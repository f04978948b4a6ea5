"""Load colorizers from a local folder or a Hub repo id; save them atomically in Hub format.

    from models.hub import load_colorizer
    colorizer = load_colorizer("weights/pix2pix")          # bundled folder
    colorizer = load_colorizer("user/colorizer", revision="v1")  # Hub repo (needs network)

Only safetensors are read (never pickles) and keys must match exactly. A folder that is not a
ColorLab model is rejected with a sentence that says what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from models.base import ColorizationNet
from models.colorizer import Colorizer
from models.folder_check import check_finite, check_model_folder
from models.hub_files import (  # re-exported: callers know these names from models.hub
    CONFIG_NAME,
    DIFFUSION_MARKER,
    WEIGHTS_NAME,
    download_model_folder,
    looks_like_repo_id,
    read_config,
    resolve_model_folder,
    write_folder_atomically,
)
from models.pipeline import NetworkColorizer

__all__ = [
    "CONFIG_NAME",
    "DIFFUSION_MARKER",
    "WEIGHTS_NAME",
    "download_model_folder",
    "load_colorizer",
    "load_model",
    "looks_like_repo_id",
    "resolve_model_folder",
    "save_model_atomically",
]


def load_model(source: str | os.PathLike[str], *, revision: str | None = None) -> ColorizationNet:
    """The bare network (for training or export); use `load_colorizer` to colorize images."""
    folder = resolve_model_folder(source, revision=revision)
    # Config types, ranges, parameter budget and the weights header, all checked before a byte is allocated.
    model_class, _ = check_model_folder(folder, read_config(folder))
    try:
        model = model_class.from_pretrained(folder)
    except (OSError, RuntimeError, SafetensorError) as error:  # the header was sound but the data was not
        raise ValueError(f"{folder / WEIGHTS_NAME} could not be read ({error}); re-save or re-download it.") from error
    check_finite(model, folder)
    return model


def load_colorizer(
    source: str | os.PathLike[str],
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
) -> Colorizer:
    """A ready `Colorizer` from a local folder or Hub repo id: a `NetworkColorizer`, or a `DiffusionColorizer` for
    a folder with the diffusion marker."""
    folder = resolve_model_folder(source, revision=revision)
    display_name = name or Path(str(source)).name
    if (folder / DIFFUSION_MARKER).is_file():
        from models.diffusion import load_diffusion_colorizer  # heavy (diffusers): only when needed

        return load_diffusion_colorizer(folder, device=device, name=display_name)
    model = load_model(folder)
    card_file = folder / "README.md"
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else ""
    return NetworkColorizer(model, device=device, name=display_name, card=card)


def save_model_atomically(model: ColorizationNet, folder: str | os.PathLike[str], **save_kwargs: Any) -> Path:
    """`model.save_pretrained` into `folder` through a staging folder (see `write_folder_atomically`): a crash
    leaves the previous file or the new one, never half a file; config.json moves last; other files stay."""

    def write(staging: Path) -> None:
        model.save_pretrained(staging, **save_kwargs)

    return write_folder_atomically(folder, write, last=CONFIG_NAME)
