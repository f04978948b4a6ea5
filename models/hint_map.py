"""Hints as a network input: the hint map at the working size (`encode_hints`), and hint inputs added to a
trained automatic network (`with_hint_input`). What a hint is, and the hints file, are in `models.hints`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from models.base import HINT_CHANNELS, ColorizationNet
from models.color import AB_SCALE, fit_lab_to_gamut, rgb_to_lab
from models.hints import MAX_HINT_HALF_SIDE, Hint, check_hints


def hint_ab(hint: Hint, lightness: float) -> tuple[float, float]:
    """The hint's a and b: from Lab as given, or from RGB at the photo's `lightness` there, pulled into gamut."""
    if hint.lab is not None:
        return hint.lab[1], hint.lab[2]
    rgb = torch.tensor(hint.rgb, dtype=torch.float32).reshape(3, 1, 1) / 255.0
    lab = rgb_to_lab(rgb)
    lab[0] = float(lightness)
    fitted = fit_lab_to_gamut(lab)
    return float(fitted[1, 0, 0]), float(fitted[2, 0, 0])


def _patch(centre: float, half: int, limit: int) -> slice:
    middle = min(max(round(centre), 0), limit - 1)
    return slice(max(middle - half, 0), min(middle + half + 1, limit))


def encode_hints(hints: Sequence[Hint], lightness: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(1, HINT_CHANNELS, h, w) hint map at the working `shape` for a photo of full-resolution `lightness`
    (1, 1, H, W): normalised a and b in each hint's patch, the mask 1 there. Later hints overwrite earlier ones."""
    full_height, full_width = lightness.shape[-2:]
    check_hints(hints, (full_width, full_height))
    height, width = shape
    scale_x, scale_y = width / full_width, height / full_height
    hint_map = torch.zeros(1, HINT_CHANNELS, height, width)
    for hint in hints:
        # The photo's L under the hint: its full-resolution patch (at least the pixel itself).
        full_half = max(0, round(hint.radius))
        rows = _patch(hint.y, full_half, full_height)
        columns = _patch(hint.x, full_half, full_width)
        a, b = hint_ab(hint, float(lightness[0, 0, rows, columns].mean()))
        half = min(MAX_HINT_HALF_SIDE, round(hint.radius * (scale_x * scale_y) ** 0.5))
        rows = _patch((hint.y + 0.5) * scale_y - 0.5, half, height)
        columns = _patch((hint.x + 0.5) * scale_x - 0.5, half, width)
        hint_map[0, 0, rows, columns] = a / AB_SCALE
        hint_map[0, 1, rows, columns] = b / AB_SCALE
        hint_map[0, 2, rows, columns] = 1.0
    return hint_map


def with_hint_input(model: ColorizationNet) -> ColorizationNet:
    """A hint-conditioned copy of an automatic network: the same architecture, config and weights, with the first
    layer's new hint-map input channels set to zero, so with no hints it colorizes exactly as `model` did.

    This is how a hint model is fine-tuned from a trained automatic one (`--init_from ... --hints`)."""
    if model.takes_hints:
        return model
    config = model.constructor_arguments()
    hinted = type(model)(**{**config, "hints": True})
    state = model.state_dict()
    widened = {}
    for name, target in hinted.state_dict().items():
        source = state[name]
        if source.shape != target.shape:
            # the first layer's weight: (out, 1, kh, kw) -> (out, 1 + HINT_CHANNELS, kh, kw), new inputs zero
            # (a ConvTranspose first layer would be (in, out, ...): its input channels are dim 0)
            dim = next(d for d in range(source.dim()) if source.shape[d] != target.shape[d])
            source = torch.cat(
                [
                    source,
                    source.new_zeros(
                        *target.shape[:dim], target.shape[dim] - source.shape[dim], *target.shape[dim + 1 :]
                    ),
                ],
                dim=dim,
            )
        widened[name] = source
    hinted.load_state_dict(widened, strict=True)
    hinted.colorlab = dict(model.colorlab)
    hinted.card_data = dict(model.card_data)
    return hinted.to(next(model.parameters()).device)
