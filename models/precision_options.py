"""The `--precision` setting, checked before torch is imported (standard library only).

    check_precision("AUTO") -> "auto"        check_precision("fp16") -> ValueError: --precision must be one of ...

What each choice does is `models.precision`'s to say; this module only knows the names.
"""

from __future__ import annotations

PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")


def check_precision(value: str, *, what: str = "precision") -> str:
    """One of PRECISION_CHOICES (case-insensitive), lower-cased; ValueError naming `what` otherwise."""
    choice = str(value).strip().lower()
    if choice not in PRECISION_CHOICES:
        raise ValueError(
            f"{what} must be one of {', '.join(PRECISION_CHOICES)}, got {value!r}; auto (the default) uses the path "
            "measured fastest for this model on this machine (python -m models.precision MODEL), else fp32."
        )
    return choice
