"""Grow a trained network: rebuild it with changed constructor arguments and keep every weight it already has.

    model = with_overrides(load_model("weights/colour_l1"), {"global_context": True})

This is how `--init_from ... --model_overrides` fine-tunes a trained model with a new block. The overrides may
only add modules (new weights keep their own initialisation; blocks meant for growing, such as
`models.baselines.GlobalContext`, start as the identity). An override that would change the shape of a trained
weight, drop one, or change what the network computes before its first step (a deeper U-Net keeps every weight's
shape but not its meaning) is refused: it would throw away what the model learned.
"""

from __future__ import annotations

from typing import Any

import torch

from models.base import ColorizationNet


def with_overrides(model: ColorizationNet, overrides: dict[str, Any]) -> ColorizationNet:
    """`model` rebuilt with `overrides` merged into its config; its weights copied, new weights as initialised."""
    config = model.constructor_arguments()
    if all(config.get(name) == value for name, value in overrides.items()):
        return model
    try:
        grown = type(model)(**{**config, **overrides})
    except TypeError as error:
        raise ValueError(
            f"--model_overrides {overrides} do not fit a {type(model).__name__} ({error}); use only arguments its "
            "constructor takes."
        ) from error
    old_state, new_state = model.state_dict(), grown.state_dict()
    dropped = sorted(set(old_state) - set(new_state))
    reshaped = sorted(k for k in old_state.keys() & new_state.keys() if old_state[k].shape != new_state[k].shape)
    if dropped or reshaped:
        changed = ", ".join((dropped + reshaped)[:3])
        raise ValueError(
            f"--model_overrides {overrides} would drop or reshape trained weights of the --init_from model "
            f"({changed}); "
            "with --init_from, overrides may only add blocks (e.g. global_context): train from scratch to change "
            "the architecture."
        )
    grown.load_state_dict({**new_state, **old_state}, strict=True)
    grown = grown.to(next(model.parameters()).device)
    if not _computes_the_same(model, grown):
        raise ValueError(
            f"--model_overrides {overrides} would change what the --init_from model computes (its new layers do not "
            "start as the identity); with --init_from, overrides may only add blocks that do (e.g. global_context): "
            "train from scratch to change the architecture."
        )
    grown.colorlab = dict(model.colorlab)
    grown.card_data = dict(model.card_data)
    return grown


def _computes_the_same(model: ColorizationNet, grown: ColorizationNet) -> bool:
    """Both networks in eval mode on one random L image (a few multiples of the size they need), outputs compared."""
    side = max(32, 2 * grown.size_multiple)
    l_norm = torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    modes = model.training, grown.training
    model.eval(), grown.eval()
    try:
        with torch.no_grad():
            before = model(l_norm.to(next(model.parameters())))
            after = grown(l_norm.to(next(grown.parameters()))).to(before)
    finally:
        model.train(modes[0]), grown.train(modes[1])
    # blocks that start as the identity give exactly the same numbers; anything else moves them
    return before.shape == after.shape and torch.allclose(before.float(), after.float(), rtol=0.0, atol=1e-6)
