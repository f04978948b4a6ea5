"""Grow a trained network: rebuild it with changed constructor arguments and keep every weight it already has.

    model = with_overrides(load_model("weights/colour_l1"), {"global_context": True})

This is how `--init_from ... --model_overrides` fine-tunes a trained model with a new block. The overrides may
only add modules (new weights keep their own initialisation; blocks meant for growing, such as
`models.baselines.GlobalContext`, start as the identity). An override that would change the shape of a trained
weight, or drop one, is refused: it would throw away what the model learned.
"""

from __future__ import annotations

from typing import Any

from models.base import COLORLAB_KEY, ColorizationNet


def with_overrides(model: ColorizationNet, overrides: dict[str, Any]) -> ColorizationNet:
    """`model` rebuilt with `overrides` merged into its config; its weights copied, new weights as initialised."""
    config = {k: v for k, v in getattr(model, "_hub_mixin_config", {}).items() if k != COLORLAB_KEY}
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
    grown.colorlab = dict(model.colorlab)
    grown.card_data = dict(model.card_data)
    return grown.to(next(model.parameters()).device)
