"""Colour points a user places on the photo in the Colorize tab: per-session state, checked like any
other client input.

    points = place_point(points, event.index, photo=path, uploads=reader, colour="#c81e28", source=PICKED, ...)
    x, y = parse_click(event.index)                        # gr.Image .select: [x, y] in the photo's own pixels
    points = add_point(points, x, y, parse_colour("#c81e28"), size=(640, 480))
    points = add_point(points, x, y, sample_result(result_png, x, y, outputs_root), size=(640, 480))
    points = undo_point(points)                            # [] clears them all
    hints = hints_from_points(points)                      # models.hints.Hint objects for colorize(..., hints=...)
    html = points_html(points)                             # the list under the photo

The points live in a gr.State as a list of JSON-like dicts ({"x", "y", "rgb": "#rrggbb", "radius"}), the format of
the CLI's hints file (`models.hints.hint_from_dict`). Everything here arrives from the browser and can be forged: the
click's coordinates, the colour picker's text, the state itself, the path of the current result. Each is checked
(through `models.hints.Hint` / `check_hints`, the upload reader's limits, the output folder's bounds) and refused
with one sentence (a ValueError; the UI shows it as a toast and keeps the points as they were).
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.hints import MAX_HINTS, Hint, HintError, check_hints, hint_from_dict, hint_to_dict
from space.uploads import UploadReader

# A point covers a square of this fraction of the photo's shorter side on each side of the click: about two working
# pixels at a model's native size (5x5 of the 1x1-7x7 patches training showed), whatever the photo's resolution.
POINT_RADIUS_FRACTION = 0.01
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_RGB_FUNCTION = re.compile(r"^rgba?\(\s*([^,]+),\s*([^,]+),\s*([^,)]+)\s*(?:,\s*[^)]*)?\)$")
_EXIF_ORIENTATION = 0x0112
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height (the browser shows them turned)
_NOT_UNDERSTOOD = "The colour points were not understood; press 'Clear points' and place them again."
# Where a click's colour comes from (the radio's choices).
PICKED = "the colour picked above"
FROM_RESULT = "the current result's colour there"
COLOUR_SOURCES = (PICKED, FROM_RESULT)


def point_radius(size: tuple[int, int]) -> float:
    """The radius (full-resolution pixels) of a point on a photo of `size` (width, height)."""
    return round(max(1.0, min(size) * POINT_RADIUS_FRACTION), 1)


def parse_click(index: Any) -> tuple[int, int]:
    """The pixel a click on gr.Image picked: its SelectData.index, [x, y] in the shown photo's own pixels."""
    values = list(index) if isinstance(index, list | tuple) else []
    if len(values) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise HintError("Click on the photo itself to place a colour point.")
    return round(values[0]), round(values[1])


def parse_colour(value: Any) -> tuple[int, int, int]:
    """An (r, g, b) from the colour picker's text: '#rrggbb', '#rgb', '#rrggbbaa' or 'rgb(a)(r, g, b[, a])'."""
    text = value.strip() if isinstance(value, str) else ""
    match = _HEX.match(text)
    if match:
        digits = match.group(1)
        digits = "".join(c * 2 for c in digits) if len(digits) == 3 else digits[:6]  # alpha ignored
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    match = _RGB_FUNCTION.match(text)
    if match:
        try:
            channels = [float(part) for part in match.groups()]
        except ValueError:
            channels = []
        if len(channels) == 3 and all(math.isfinite(c) and 0 <= c <= 255 for c in channels):
            return round(channels[0]), round(channels[1]), round(channels[2])
    raise HintError(
        f"{str(value)[:40]!r} is not a colour; pick the point's colour with the colour picker (e.g. #c81e28)."
    )


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def hints_from_points(points: Any, size: tuple[int, int] | None = None) -> list[Hint]:
    """The session's points as Hints, each checked (and, given the photo's `size`, checked to lie on it)."""
    if points is None:
        return []
    if not isinstance(points, list) or len(points) > MAX_HINTS:
        raise HintError(_NOT_UNDERSTOOD)
    hints = [hint_from_dict(point, where=f"Colour point {number}") for number, point in enumerate(points, 1)]
    if size is not None:
        check_hints(hints, size)
    return hints


def add_point(points: Any, x: int, y: int, rgb: Sequence[int], *, size: tuple[int, int]) -> list[dict[str, Any]]:
    """A new list: the session's points plus one at (x, y) of colour `rgb` on a photo of `size` (width, height)."""
    hints = hints_from_points(points, size)
    if len(hints) >= MAX_HINTS:
        raise HintError(f"A photo takes at most {MAX_HINTS} colour points; undo or clear some first.")
    hint = Hint(x=x, y=y, rgb=tuple(rgb), radius=point_radius(size))
    hints.append(hint)
    check_hints(hints, size)
    return [_point_dict(h) for h in hints]


def _point_dict(hint: Hint) -> dict[str, Any]:
    record = hint_to_dict(hint)
    if hint.rgb is not None:
        record["rgb"] = hex_colour(hint.rgb)
    return record


def undo_point(points: Any) -> list[dict[str, Any]]:
    """The session's points without the last one (a state that is not a list of points is cleared)."""
    try:
        hints = hints_from_points(points)
    except HintError:
        return []
    return [_point_dict(hint) for hint in hints[:-1]]


def photo_size(uploads: UploadReader, path: str | os.PathLike[str] | None) -> tuple[int, int]:
    """The photo's (width, height) as the browser shows it (EXIF orientation applied), from its header alone."""
    if not path:
        raise HintError("Upload a photo or pick an example first, then click on it to place a colour point.")
    data = uploads.read_bytes(path)  # the upload size limit, and a sentence naming the file
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            orientation = probe.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # any file PIL cannot read: the reader decodes it and says what is wrong
        with uploads.open(path) as upload:
            return upload.image.size
    return (height, width) if orientation in _ROTATED else (width, height)


def sample_result(
    result: str | os.PathLike[str] | None, x: int, y: int, outputs_root: Path, *, size: tuple[int, int]
) -> tuple[int, int, int]:
    """The current result's mean colour over a point's patch at (x, y): "keep the colour it has here"."""
    path = Path(result) if isinstance(result, str | os.PathLike) and str(result) else None
    if path is None or not path.resolve().is_relative_to(Path(outputs_root).resolve()):
        raise HintError("Colorize the photo first, then click on it to take the result's colour there.")
    try:
        with Image.open(path) as image:
            if image.size != tuple(size):
                raise HintError("The current result belongs to another photo; colorize this photo first.")
            rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    except OSError:
        raise HintError("The current result has expired; colorize the photo again, then take its colour.") from None
    width, height = size
    if not (0 <= x < width and 0 <= y < height):
        raise HintError(f"({x}, {y}) lies outside the {width}x{height} photo; click on the photo itself.")
    half = round(point_radius(size))
    patch = rgb[max(y - half, 0) : y + half + 1, max(x - half, 0) : x + half + 1]
    red, green, blue = (round(float(v)) for v in patch.reshape(-1, 3).mean(axis=0))
    return red, green, blue


def place_point(
    points: Any,
    index: Any,
    *,
    photo: str | os.PathLike[str] | None,
    uploads: UploadReader,
    colour: Any,
    source: Any,
    result: str | os.PathLike[str] | None,
    outputs_root: Path,
) -> list[dict[str, Any]]:
    """A click on the photo (gr.SelectData.index) becomes a new point: of the picked `colour`, or, when `source` is
    FROM_RESULT, of the colour the current `result` has there."""
    if source not in COLOUR_SOURCES:
        raise HintError(f"Choose where a point's colour comes from: {PICKED!r} or {FROM_RESULT!r}.")
    size = photo_size(uploads, photo)
    x, y = parse_click(index)
    rgb = sample_result(result, x, y, outputs_root, size=size) if source == FROM_RESULT else parse_colour(colour)
    return add_point(points, x, y, rgb, size=size)


def points_html(points: Any) -> str:
    """The points as a small numbered list (position, swatch and hex), for a gr.HTML under the photo."""
    try:
        hints = hints_from_points(points)
    except HintError:
        hints = []
    if not hints:
        return '<p class="hint-empty">No colour points yet: click on the photo to place one.</p>'
    rows = []
    for hint in hints:
        colour = hex_colour(hint.rgb) if hint.rgb is not None else "#808080"  # the UI only places rgb points
        rows.append(
            f'<li data-x="{hint.x:g}" data-y="{hint.y:g}" data-colour="{colour}">'
            f'<span class="hint-swatch" style="background:{colour}"></span> '
            f"({hint.x:g}, {hint.y:g}) {html.escape(colour)}</li>"
        )
    return f'<ol class="hint-points">{"".join(rows)}</ol>'
