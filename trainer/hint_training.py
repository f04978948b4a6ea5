"""What the trainer does differently for a hint-conditioned colorizer (`--hints`; see models.hints).

Each training step draws hint maps from the batch's true colours (trainer.hint_sampling) with a generator seeded by
(seed, step, rank), so an interrupted run resumes with the very hints it would have drawn. Validation measures the
model twice: with no hints (the plain metrics, comparable with an automatic model's) and with 10 simulated hints per
photo, drawn once with a fixed seed (the `hints10_` metrics), so the log shows both what the model guesses alone
and how well it follows points.
"""

from __future__ import annotations

import torch

from models.base import ColorizationNet
from models.hint_map import with_hint_input
from models.hint_propagation import HintPropagation
from models.metric_table import HINTED_PREFIX, METRICS, VALIDATION_HINTS
from trainer.config import TrainingConfig
from trainer.hint_sampling import sample_hint_map


def make_hint_model(model: ColorizationNet, args: TrainingConfig) -> ColorizationNet:
    """With --hints, the generator as a hint model (an automatic one widened with zero-initialised hint inputs)."""
    if not args.hints:
        return model
    hinted = with_hint_input(model)
    hinted.card_data.setdefault("variant", model.card_data.get("variant", args.model))
    # served with the residual at each hint spread to similar pixels (models.hint_propagation); the saved setting
    # can be tuned on validation afterwards or set to false
    hinted.colorlab.setdefault("hint_propagation", HintPropagation().to_config())
    return hinted


def training_hint_maps(ab_norm: torch.Tensor, *, seed: int, step: int, rank: int) -> torch.Tensor:
    """This step's hint maps for the batch: a geometric number of true-colour points per image."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + rank)
    return sample_hint_map(ab_norm, generator)


def validation_hint_maps(ab_norm: torch.Tensor, *, seed: int) -> torch.Tensor:
    """The fixed hint maps validation uses: VALIDATION_HINTS true-colour points per validation image."""
    generator = torch.Generator().manual_seed(seed + 10_007)
    return sample_hint_map(ab_norm, generator, count=VALIDATION_HINTS)


def format_metric(name: str, value: float) -> str:
    """A validation metric as the log shows it (hinted metrics take their base metric's format)."""
    return METRICS[name.removeprefix(HINTED_PREFIX)].format(value)
