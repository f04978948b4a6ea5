"""Broken and hostile model folders, one per failure kind (shared by the model-folder and app tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def hostile_folders(root: Path) -> list[str]:
    """Save a tiny pix2pix under root/<kind> for each kind of broken folder; returns the kinds."""
    from models.registry import create_model

    config_edits = {"huge": {"base_width": 512}, "deep": {"depth": 1000}, "negative": {"base_width": -4}}
    kinds = [*config_edits, "list", "pickle", "int8", "nan"]
    for kind in kinds:
        folder = root / kind
        create_model("pix2pix_tiny").save_pretrained(folder)
        config_file, weights_file = folder / "config.json", folder / "model.safetensors"
        if kind in config_edits:
            config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **config_edits[kind]}))
        elif kind == "list":
            config_file.write_text("[]")
        elif kind == "pickle":
            torch.save({"weights": torch.zeros(2)}, weights_file)
        else:
            state = load_file(str(weights_file))
            if kind == "int8":
                state = {k: v.to(torch.int8) if v.is_floating_point() else v for k, v in state.items()}
            else:
                state["model.model.0.weight"][0, 0, 0, 0] = float("nan")
            save_file(state, str(weights_file))
    return kinds
