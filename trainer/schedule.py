"""Learning-rate schedules with linear warm-up (constant, linear decay to zero, cosine): diffusers' `get_scheduler`.

    scheduler = build_scheduler("cosine", optimizer, warmup_steps=50, total_steps=1000)

The schedules are diffusers' own (the ones its example trainers use), so `--lr_scheduler` means the same here as
there: the warm-up rises linearly from 0 at step 0 to the full rate at `warmup_steps`, `linear` then falls to 0
at `total_steps`, `cosine` follows half a cosine to 0. `constant` ignores the warm-up, as in diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: trainer.args reads SCHEDULER_NAMES for --help without importing torch
    import torch

SCHEDULER_NAMES = ("constant", "constant_with_warmup", "linear", "cosine")


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR (its state_dict is what checkpoints save) for `optimizer`; total_steps counts scheduler steps."""
    if name not in SCHEDULER_NAMES:
        raise ValueError(f"Unknown --lr_scheduler '{name}'; choose {', '.join(SCHEDULER_NAMES[:-1])} or cosine.")
    # Imported here: diffusers takes ~1.5 s to import, and only a trainer that builds a scheduler needs it.
    from diffusers.optimization import get_scheduler

    warmup_steps = max(0, warmup_steps)
    # A run no longer than its warm-up still reaches the full rate once before the decay (as the trainer always did).
    total_steps = max(total_steps, warmup_steps + 1)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
