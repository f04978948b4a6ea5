"""The one table of ColorLab's quality metrics: name, which direction is better, and how a value is shown.

    from models.metric_table import METRICS, VALIDATION_METRICS, is_better
    METRICS["ciede2000"].higher_is_better          # False: lower is better
    METRICS["ssim"].format(0.84812)                # "0.8481"
    is_better("ciede2000", 11.9, best=12.4)        # True

Validation and early stopping (trainer.validation), the metric functions (judge.metrics), evaluation reports
(judge.report, judge.human) and model cards (models.model_card) all read this table, so a metric's direction
and label are written once. It sits in models/ and imports nothing (standard library only) because the cards in
models/ need it and models/ never imports trainer/. Adding a metric: a row here, then its function in
judge/metrics.py (weight-free, per image) or in judge.evaluate (metrics that need weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One quality metric as every report shows it."""

    name: str  # the key in metric dicts, JSON reports, CSV columns and --early_stopping_metric
    label: str  # short column label of evaluation reports
    card_name: str  # readable name on model cards (the Hub's evaluation table)
    higher_is_better: bool | None  # None: neither direction is better by itself (colourfulness)
    decimals: int  # how many decimals reports show
    per_image: bool = True  # False: a set-level statistic (FID, KID), no per-image values
    needs_weights: bool = False  # True: computed with pretrained weights, so unavailable without them

    @property
    def arrow(self) -> str:
        """ " ↑" / " ↓" after a label, or nothing when no direction is better."""
        return {True: " ↑", False: " ↓"}.get(self.higher_is_better, "")

    @property
    def hub_name(self) -> str:
        """The card's name for it, saying so where lower is better (the Hub's widget shows no direction)."""
        return self.card_name + (" (lower is better)" if self.higher_is_better is False else "")

    def format(self, value: float | None) -> str:
        """`value` with this metric's decimals (see `format_number`)."""
        return format_number(value, self.decimals)


def format_number(value: float | None, decimals: int) -> str:
    """`value` with `decimals` decimals; "n/a" for a missing or NaN value, "∞" / "-∞" for an infinite one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{decimals}f}"


_ROWS = (
    Metric("psnr", "PSNR (dB)", "PSNR (RGB, dB)", True, 2),
    Metric("psnr_ab", "PSNR ab (dB)", "PSNR of a/b (dB)", True, 2),
    Metric("ssim", "SSIM", "SSIM (RGB)", True, 4),
    Metric("ciede2000", "ΔE2000", "CIEDE2000 colour difference", False, 2),
    Metric("colourfulness", "Colourfulness", "Colourfulness (Hasler & Süsstrunk)", None, 1),
    Metric("colourfulness_delta", "ΔColourfulness", "|Δ colourfulness| to the ground truth", False, 1),
    Metric("ab_auc", "ab AuC", "ab AuC (Zhang et al. 2016)", True, 4),
    Metric("blotches", "Blotches (%)", "Blotches: % of pixels in colour islands the truth lacks", False, 3),
    Metric("lpips", "LPIPS", "LPIPS (AlexNet)", False, 4, needs_weights=True),
    Metric("fid", "FID", "FID", False, 2, per_image=False, needs_weights=True),
    Metric("kid", "KID", "KID", False, 4, per_image=False, needs_weights=True),
)
METRICS: dict[str, Metric] = {row.name: row for row in _ROWS}
# A hint model's validation scores it twice: with no hints (the names above) and with this many simulated colour
# points, under the names above with this prefix (trainer.hint_training; cards name them in models.model_card).
VALIDATION_HINTS = 10
HINTED_PREFIX = f"hints{VALIDATION_HINTS}_"
# Weight-free, per image: what validation computes at every validation step (judge.metrics.image_metrics).
VALIDATION_METRICS: tuple[str, ...] = tuple(row.name for row in _ROWS if row.per_image and not row.needs_weights)
# What early stopping and the "best" checkpoint can follow: validation metrics with a better direction.
EARLY_STOPPING_METRICS: tuple[str, ...] = tuple(
    name for name in VALIDATION_METRICS if METRICS[name].higher_is_better is not None
)


def is_better(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of metric `name` beats `best` (None: nothing to beat yet); refuses a metric without a
    direction, since "better" means nothing for it."""
    direction = METRICS[name].higher_is_better
    if direction is None:
        raise ValueError(f"{name} has no better direction; follow one of {', '.join(EARLY_STOPPING_METRICS)}.")
    if best is None:
        return True
    return value > best if direction else value < best
