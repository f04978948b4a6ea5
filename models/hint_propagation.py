"""Hint propagation: after a hint model's forward pass, spread what it still gets wrong at each hint to the pixels
that resemble that hint's place (near it, and of a similar lightness).

A network trained for an hour on a CPU learns to take hints only slowly: on the validation split 10 true-colour
points moved its CIEDE2000 by tenths (docs/colour-hints.md). The classic remedy is edge-aware propagation of user
colour (Levin et al. 2004 propagate scribbles along similar intensities). Here it corrects the network instead of
replacing it: for each hinted patch k, the residual r_k = hint ab - predicted ab (patch means) is added to every
pixel p with the bilateral weight

    w_k(p) = exp(-|p - c_k|^2 / (2 sigma_space^2) - (L(p) - L_k)^2 / (2 sigma_lightness^2))

normalised over the hints (so a pixel between two hints takes a blend) and faded out where no hint is close
(weight / (weight + `fade`)). At a hint the output equals the hint; far from every hint it is the network's colour.
Positions are in units of the working image's side, lightness in normalised L (L / 50 - 1). The defaults were
chosen on the validation split (a grid over sigma_space 0.1-0.4, sigma_lightness 0.05-0.14 and fade 0.02-0.2 with
the default colorizer and 10 true-colour points: CIEDE2000 12.03 without hints, 6.21 at these settings, 8.73 at the
narrowest); a model's config (`colorlab.hint_propagation`) may set its own or turn it off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage


@dataclass(frozen=True)
class HintPropagation:
    """Edge-aware spreading of the residual at each hint (see the module docstring)."""

    sigma_space: float = 0.25  # of the working image's side
    sigma_lightness: float = 0.14  # normalised L: 7 CIELAB lightness units
    fade: float = 0.02  # total weight at which a pixel takes half of the hints' correction

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"hint_propagation.{name} must be a positive number, got {value!r}.")

    @classmethod
    def from_config(cls, block: Any) -> HintPropagation | None:
        """The settings saved in a config's colorlab block: an object of them, or false/absent for none."""
        if block is None or block is False:
            return None
        if block is True:
            return cls()
        if not isinstance(block, Mapping):
            raise ValueError(f"colorlab.hint_propagation must be an object of settings or false, got {block!r}.")
        unknown = sorted(set(block) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"colorlab.hint_propagation has unknown setting(s) {', '.join(unknown)}.")
        return cls(**block)

    def to_config(self) -> dict[str, float]:
        return asdict(self)


def saved_propagation(model: Any) -> HintPropagation | None:
    """The propagation a network is served with: a hint model's saved `colorlab.hint_propagation` (None for a model
    without hint inputs, or with the setting turned off). The pipeline and the trainer's served loss both read it."""
    if not model.takes_hints:
        return None
    return HintPropagation.from_config(model.colorlab.get("hint_propagation"))


def propagate_hint_residuals(
    l_norm: torch.Tensor, ab_norm: torch.Tensor, hint_map: torch.Tensor, settings: HintPropagation
) -> torch.Tensor:
    """(B, 2, h, w) ab corrected towards the hints of `hint_map` (B, 3, h, w); images without hints are unchanged."""
    corrected = ab_norm.clone()
    for index in range(ab_norm.shape[0]):
        corrected[index] = _propagate_one(l_norm[index, 0], ab_norm[index], hint_map[index], settings)
    return corrected


def _propagate_one(
    lightness: torch.Tensor, ab: torch.Tensor, hint_map: torch.Tensor, settings: HintPropagation
) -> torch.Tensor:
    mask = (hint_map[2] > 0).cpu().numpy()
    labels, count = ndimage.label(mask)  # overlapping or touching patches count as one hint
    if count == 0:
        return ab
    height, width = lightness.shape
    side = float(max(height, width))
    rows = torch.arange(height, dtype=torch.float32)[:, None] / side
    columns = torch.arange(width, dtype=torch.float32)[None, :] / side
    lightness = lightness.float().cpu()
    ab_cpu = ab.float().cpu()
    correction = torch.zeros(2, height, width)
    total = torch.zeros(height, width)
    labels_t = torch.from_numpy(labels.astype(np.int64))
    for label in range(1, count + 1):
        patch = labels_t == label
        residual = hint_map[:2].float().cpu()[:, patch].mean(1) - ab_cpu[:, patch].mean(1)
        row, column = rows.expand(height, width)[patch].mean(), columns.expand(height, width)[patch].mean()
        centre_lightness = lightness[patch].mean()
        distance = (rows - row) ** 2 + (columns - column) ** 2
        weight = torch.exp(
            -distance / (2 * settings.sigma_space**2)
            - (lightness - centre_lightness) ** 2 / (2 * settings.sigma_lightness**2)
        )
        correction += weight * residual[:, None, None]
        total += weight
    blend = correction / total.clamp(min=1e-6) * (total / (total + settings.fade))
    return (ab_cpu + blend).clamp(-1, 1).to(ab)
