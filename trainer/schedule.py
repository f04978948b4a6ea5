"""Learning-rate schedules with linear warm-up: constant, linear decay to zero, or cosine.

The same shapes as diffusers' `get_scheduler`, written as one LambdaLR so that importing the
trainer does not pull in diffusers (it is only needed for the ControlNet colorizer).
"""

from __future__ import annotations

import math

import torch


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    if name not in ("constant", "constant_with_warmup", "linear", "cosine"):
        raise ValueError(f"Unknown --lr_scheduler '{name}'; choose constant, constant_with_warmup, linear or cosine.")
    warmup_steps = max(0, warmup_steps) if name != "constant" else 0
    total_steps = max(total_steps, warmup_steps + 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if name == "linear":
            return max(0.0, 1.0 - progress)
        if name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
