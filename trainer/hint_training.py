"""What the trainer does differently for a hint-conditioned colorizer (`--hints`; see models.hints).

Each training step draws hint maps from the batch's true colours (models.hint_sampling) with a generator seeded by
(seed, step, rank), so an interrupted run resumes with the very hints it would have drawn. Validation measures the
model twice: with no hints (the plain metrics, comparable with an automatic model's) and with 10 simulated hints per
photo, drawn once with a fixed seed (the `hints10_` metrics), so the log shows both what the model guesses alone
and how well it follows points. With `--hint_loss served` (the default) both the loss and the hinted validation see
the output after the model's hint propagation, as users get it.
"""

from __future__ import annotations

import torch

from models.base import ColorizationNet
from models.hint_map import with_hint_input
from models.hint_propagation import HintPropagation, propagate_hint_residuals, saved_propagation
from models.hint_sampling import sample_hint_map
from models.metric_table import HINTED_PREFIX, METRICS, VALIDATION_HINTS
from trainer.config import GANTrainingConfig


def make_hint_model(model: ColorizationNet, args: GANTrainingConfig) -> ColorizationNet:
    """With --hints, the generator as a hint model (an automatic one widened with zero-initialised hint inputs)."""
    if not args.hints:
        return model
    hinted = with_hint_input(model)
    hinted.card_data.setdefault("variant", model.card_data.get("variant", args.model))
    # served with the residual at each hint spread to similar pixels (models.hint_propagation); the saved setting
    # can be tuned on validation afterwards or set to false
    hinted.colorlab.setdefault("hint_propagation", HintPropagation().to_config())
    return hinted


def served_propagation(model: ColorizationNet, config: GANTrainingConfig) -> HintPropagation | None:
    """The hint propagation the loss and validation apply after the forward pass (--hint_loss served), or None.

    A hint model is served as network + propagation (models.pipeline). Trained on its network output alone, it
    learned to match each point itself, which left the propagation no residual to spread, and the pair coloured
    worse with 10 points than the same network with untrained hint inputs (docs/colour-quality.md). Through the
    propagation, the loss sees what users see and the network learns what to add to the spread."""
    return saved_propagation(model) if config.hint_loss == "served" else None


def served_ab(
    l_norm: torch.Tensor, ab_norm: torch.Tensor, hint_map: torch.Tensor, propagation: HintPropagation | None
) -> torch.Tensor:
    """The network's ab as the user gets it: with each hint's residual spread (differentiable), or unchanged."""
    if propagation is None:
        return ab_norm
    return propagate_hint_residuals(l_norm, ab_norm, hint_map, propagation)


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
