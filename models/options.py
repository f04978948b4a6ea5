"""The request settings every colorizer takes, checked in one place: working size, saturation, size averaging.

    parse_working_size("auto")  -> None (the model's native size)      parse_working_size("384") -> 384
    check_saturation(-1)        -> ValueError: saturation must be >= 0 ...
    parse_size_average("128")   -> 128 (a second working size to average with; None: off)

Standard library only, so the CLI can check its arguments before it imports torch.
"""

from __future__ import annotations

MIN_WORKING_SIZE = 16  # below it the networks' downsampling leaves nothing to colour
WorkingSize = int | str | None  # pixels, or None / "auto" for the model's native working size


def parse_working_size(value: WorkingSize, *, what: str = "working_size") -> int | None:
    """Pixels (at least 16), or None for "auto" / None (the model's native size); ValueError naming `what`."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of pixels or 'auto', got {value!r}.") from None
    if size < MIN_WORKING_SIZE:
        raise ValueError(f"{what} must be at least {MIN_WORKING_SIZE} pixels, got {size}.")
    return size


def check_saturation(value: float, *, what: str = "saturation") -> float:
    """The colour scale a request asks for: 0 is gray, 1 as predicted, more is stronger; never negative."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be >= 0 and a number (1 = as predicted), got {value!r}.") from None
    if not 0 <= scale < float("inf"):  # also refuses NaN, and inf (ab would overflow to NaN)
        raise ValueError(f"{what} must be >= 0 and finite (1 = as predicted), got {value}.")
    return scale


def parse_size_average(value: int | str | None, *, what: str = "size_average") -> int | None:
    """The second working size of test-time size averaging, in pixels (at least 16); None: no size averaging."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{what} must be a whole number of pixels (a second working size, e.g. 128), got {value!r}.")
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} must be a number of pixels (a second working size, e.g. 128), got {value!r}."
        ) from None
    if size < MIN_WORKING_SIZE:
        raise ValueError(f"{what} must be at least {MIN_WORKING_SIZE} pixels, got {size}.")
    return size
