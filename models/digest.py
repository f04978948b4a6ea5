"""One digest of a network's weights: which weights these are, for the precision cache and the trainer's rank check.

    weights_digest(model)   # hex sha256; equal for the same weights loaded twice, different for any other weights

`models.precision_cache` keys a measured precision choice by it (so its value must stay stable: a cache written
earlier must still match the same weights), and the trainer writes every DDP rank's digest of the final weights to
`logs/final_weights.txt` and refuses to save when they differ (`trainer.loop.conclude`). It reads each tensor's
bytes through a uint8 view, so bf16 weights (which numpy cannot hold) hash like any others.
"""

from __future__ import annotations

import hashlib
import json

import torch
from torch import nn


def weights_digest(model: nn.Module, *, with_config: bool = True) -> str:
    """sha256 of the network's weights and architecture: its class name, its saved config (a `hub_config()` where it
    has one; `with_config=False` leaves it out), then each parameter and buffer's name, shape, dtype and bytes, in
    state-dict order.

    The saved config carries the card facts too (validation metrics, which only the main process records), so the
    trainer's rank check compares the tensors alone."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config = getattr(model, "hub_config", None)
    if with_config and callable(config):
        digest.update(json.dumps(config(), sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
