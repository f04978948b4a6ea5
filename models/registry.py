"""Named model variants: `create_model("pix2pix_unet256")`, `list_models("*tiny")` (timm-style registry).

A variant is a small function returning a configured network; `@register_model` puts it in a dict.
Keyword overrides go straight to the network's constructor, so `create_model("unet", width=16)` works.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from models.base import ColorizationNet

ModelFactory = Callable[..., ColorizationNet]
_MODEL_FACTORIES: dict[str, ModelFactory] = {}


def register_model(factory: ModelFactory) -> ModelFactory:
    """Decorator: register `factory` under its function name."""
    name = factory.__name__
    if name in _MODEL_FACTORIES:
        raise ValueError(f"A model named '{name}' is already registered; choose another function name.")
    _MODEL_FACTORIES[name] = factory
    return factory


def _ensure_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators.
    import models.baselines
    import models.pix2pix  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style `pattern`, sorted."""
    _ensure_builtin_models()
    return sorted(name for name in _MODEL_FACTORIES if fnmatch.fnmatch(name, pattern))


def is_model(name: str) -> bool:
    _ensure_builtin_models()
    return name in _MODEL_FACTORIES


def create_model(name: str, **overrides: Any) -> ColorizationNet:
    """Build the variant `name`; unknown names fail with the list of known ones."""
    _ensure_builtin_models()
    if name not in _MODEL_FACTORIES:
        raise ValueError(f"Unknown model '{name}'. Known models: {', '.join(list_models())}.")
    model = _MODEL_FACTORIES[name](**overrides)
    model.card_data.setdefault("variant", name)
    return model
