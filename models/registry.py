"""Named model variants: `create_model("pix2pix_unet256")`, `list_models("*tiny")` (timm-style registry).

A variant is a small function returning a configured network; `@register_model` (defined in models.base, next
to the network interface) puts it in a dict. This module sits above every built-in network module and imports
them, so their variants and classes are registered before any lookup; a new architecture file is added to the
imports below. Keyword overrides go straight to the network's constructor, so `create_model("unet", width=16)`
works.
"""

from __future__ import annotations

import fnmatch
from typing import Any

# The built-in networks: importing them runs their @register_model decorators and class definitions.
import models.baselines
import models.pix2pix  # noqa: F401
from models.base import ARCHITECTURES, MODEL_FACTORIES, ColorizationNet, register_model, use_card_renderer
from models.model_card import render_model_card

__all__ = ["architecture_class", "create_model", "is_model", "list_models", "register_model"]

use_card_renderer(render_model_card)


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style `pattern`, sorted."""
    return sorted(name for name in MODEL_FACTORIES if fnmatch.fnmatch(name, pattern))


def is_model(name: str) -> bool:
    return name in MODEL_FACTORIES


def create_model(name: str, **overrides: Any) -> ColorizationNet:
    """Build the variant `name`; unknown names fail with the list of known ones."""
    if name not in MODEL_FACTORIES:
        raise ValueError(f"Unknown model '{name}'. Known models: {', '.join(list_models())}.")
    model = MODEL_FACTORIES[name](**overrides)
    model.card_data.setdefault("variant", name)
    return model


def architecture_class(name: str) -> type[ColorizationNet]:
    """The network class saved under `name` in a config.json."""
    if name not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"Unknown ColorLab architecture '{name}'; this version knows: {known}.")
    return ARCHITECTURES[name]
