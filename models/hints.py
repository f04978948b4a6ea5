"""Colour hints: "this point is red". A user's points, in the photo's own pixels, become a hint-conditioned
network's input (Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned Deep Priors").

    hints = [Hint(x=412, y=230, rgb=(200, 30, 40)), Hint(x=80, y=40, lab=(70, -5, -30), radius=12)]
    colorizer.colorize("photo.jpg", hints=hints)           # a model built with hints=True (weights/colour_hints)
    python -m models.colorize photo.jpg --hints hints.json  # the same from the command line

A hint is a point (x, y) in full-resolution pixel coordinates (0, 0 is the top-left pixel's centre), a colour and a
radius in full-resolution pixels. `models.hint_map.encode_hints` maps it to the working image: a small square patch
whose a and b are the hint's, with the mask set to 1 there (the network's three extra input channels,
`models.base.HINT_CHANNELS`). A colour given as RGB is a hue and chroma, not a lightness: the photo keeps its own L,
so the hint's ab is taken at the photo's L at that point (the mean over the hint's patch), pulled into the sRGB
gamut at that L. Red on a dark coat is therefore dark red, never a lightness change. A colour given as Lab is used
as its a and b.

This module is standard library only (the CLI reads and checks a hints file before it imports torch);
`models.hint_map` turns hints into the network's input.

The hints file of the CLI is JSON: a list of objects with "x", "y", either "rgb" ([r, g, b], 0-255, or "#rrggbb")
or "lab" ([L, a, b]), and an optional "radius" (pixels, default 0: the smallest patch at the working size).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The patch a hint covers at the working size: its half-side in working pixels, clamped to what training sampled
# (models.hint_sampling draws half-sides 0-3, patches of 1x1 to 7x7).
MAX_HINT_HALF_SIDE = 3
MAX_HINTS = 64  # far more than anyone clicks; bounds the work a forged request can ask for


class HintError(ValueError):
    """A hint that cannot be used; the message says which one and how to fix it."""


@dataclass(frozen=True)
class Hint:
    """One colour point: full-resolution pixel coordinates, a colour (exactly one of `rgb` / `lab`), a radius."""

    x: float
    y: float
    rgb: tuple[int, int, int] | None = None
    lab: tuple[float, float, float] | None = None
    radius: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x", "y", "radius"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise HintError(f"A hint's {name} must be a finite number, got {value!r}.")
        if self.radius < 0:
            raise HintError(f"A hint's radius must be 0 or more pixels, got {self.radius}.")
        if (self.rgb is None) == (self.lab is None):
            raise HintError("A hint needs exactly one colour: rgb=(r, g, b) with 0-255 values, or lab=(L, a, b).")
        if self.rgb is not None:
            object.__setattr__(self, "rgb", _check_rgb(self.rgb))
        if self.lab is not None:
            object.__setattr__(self, "lab", _check_lab(self.lab))


def _check_rgb(rgb: Any) -> tuple[int, int, int]:
    if isinstance(rgb, str):
        text = rgb.strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise HintError(f"A hint's rgb colour {rgb!r} is not a #rrggbb hex colour; write e.g. '#c81e28'.")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    values = list(rgb) if isinstance(rgb, list | tuple) else []
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 255 for v in values
    ):
        raise HintError(f"A hint's rgb colour must be three numbers from 0 to 255 (or '#rrggbb'), got {rgb!r}.")
    return (round(values[0]), round(values[1]), round(values[2]))


def _check_lab(lab: Any) -> tuple[float, float, float]:
    values = list(lab) if isinstance(lab, list | tuple) else []
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise HintError(f"A hint's lab colour must be three numbers (L 0-100, a and b about -110..110), got {lab!r}.")
    lightness, a, b = (float(v) for v in values)
    if not 0 <= lightness <= 100 or abs(a) > 128 or abs(b) > 128:
        raise HintError(f"A hint's lab colour {lab!r} is outside CIELAB (L 0-100, a and b within ±128).")
    return (lightness, a, b)


def hint_from_dict(record: Any, *, where: str = "a hint") -> Hint:
    """A `Hint` from one JSON object of a hints file (keys x, y, rgb or lab, radius)."""
    if not isinstance(record, dict):
        raise HintError(f'{where} must be an object like {{"x": 10, "y": 20, "rgb": [200, 30, 40]}}.')
    unknown = sorted(set(record) - {"x", "y", "rgb", "lab", "radius"})
    if unknown:
        raise HintError(f"{where} has unknown key(s) {', '.join(unknown)}; a hint takes x, y, rgb or lab, radius.")
    if "x" not in record or "y" not in record:
        raise HintError(f'{where} needs its position as "x" and "y" (pixels of the full-resolution photo).')
    try:
        return Hint(
            x=record["x"], y=record["y"], rgb=record.get("rgb"), lab=record.get("lab"), radius=record.get("radius", 0)
        )
    except HintError as error:
        raise HintError(f"{where}: {error}") from None


def load_hints_file(path: str | Path) -> list[Hint]:
    """Hints from a JSON file: a list of hint objects (see the module docstring)."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HintError(f"The hints file {path} does not exist; pass a JSON file of colour points.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HintError(
            f"The hints file {path} is not readable JSON ({error}); write a list of hint objects."
        ) from None
    if not isinstance(records, list):
        raise HintError(f'The hints file {path} must hold a JSON list of hint objects, e.g. [{{"x": 10, ...}}].')
    return [hint_from_dict(record, where=f"hint {number} of {path}") for number, record in enumerate(records, 1)]


def hint_to_dict(hint: Hint) -> dict[str, Any]:
    """The JSON object `hint_from_dict` reads back."""
    record: dict[str, Any] = {"x": hint.x, "y": hint.y}
    record.update({"rgb": list(hint.rgb)} if hint.rgb is not None else {"lab": list(hint.lab or ())})
    if hint.radius:
        record["radius"] = hint.radius
    return record


def check_hints(hints: Sequence[Hint], size: tuple[int, int]) -> None:
    """Refuse too many hints, or a hint outside a photo of `size` (width, height)."""
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints were given; at most {MAX_HINTS} are taken. Remove some points.")
    width, height = size
    for number, hint in enumerate(hints, 1):
        if not (-0.5 <= hint.x <= width - 0.5 and -0.5 <= hint.y <= height - 0.5):
            raise HintError(
                f"Hint {number} at ({hint.x:g}, {hint.y:g}) lies outside the {width}x{height} photo; "
                "give x and y in the photo's own pixels (0, 0 is the top-left corner)."
            )
