"""The one metric table (models.metric_table): every consumer reads its names, directions and formats.

.venv/bin/python -m pytest tests/test_metric_table.py -q -x
"""

from __future__ import annotations

import numpy as np
import pytest

from judge import metrics, report
from models.metric_table import EARLY_STOPPING_METRICS, METRICS, VALIDATION_METRICS, is_better
from models.model_card import METRIC_LABELS
from trainer.args import _build_parser


def test_validation_computes_exactly_the_tables_weight_free_metrics_in_its_order() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    scores = metrics.image_metrics(np.clip(target.astype(int) + 20, 0, 255).astype(np.uint8), target)
    assert tuple(scores) == VALIDATION_METRICS == metrics.METRIC_NAMES
    assert {"lpips", "fid", "kid"} == set(METRICS) - set(VALIDATION_METRICS)  # need weights: reports only


def test_directions() -> None:
    lower = {name for name, metric in METRICS.items() if metric.higher_is_better is False}
    assert lower == {"ciede2000", "colourfulness_delta", "blotches", "lpips", "fid", "kid"}
    assert is_better("ciede2000", 11.9, 12.4) and not is_better("ciede2000", 12.5, 12.4)
    assert is_better("psnr", 21.0, 20.0) and not is_better("ab_auc", 0.8, 0.9)
    assert is_better("blotches", 3.0, None)  # the first validation is always the best so far
    with pytest.raises(ValueError, match="colourfulness has no better direction"):
        is_better("colourfulness", 30.0, 20.0)


def test_early_stopping_offers_the_validation_metrics_that_have_a_direction() -> None:
    assert tuple(m for m in VALIDATION_METRICS if m != "colourfulness") == EARLY_STOPPING_METRICS
    action = next(a for a in _build_parser()._actions if a.dest == "early_stopping_metric")
    assert tuple(action.choices) == EARLY_STOPPING_METRICS
    assert {name: metric.higher_is_better for name, metric in METRICS.items()} == metrics.HIGHER_IS_BETTER


def test_cards_and_reports_read_their_labels_and_formats_from_the_table() -> None:
    assert METRIC_LABELS["ciede2000"] == "CIEDE2000 colour difference (lower is better)"
    assert METRIC_LABELS["ssim"] == "SSIM (RGB)"  # higher is better: the name alone
    assert set(METRIC_LABELS) == set(METRICS)
    names = ["gray", "net"]
    summary = {
        name: {m: {"mean": value, "low": value - 1, "high": value + 1} for m in ("ciede2000", "ssim")}
        for name, value in zip(names, (13.0, 11.25), strict=True)
    }
    lines = report.metrics_table({"models": names, "summary": summary, "metrics": ["ciede2000", "ssim"]})
    assert lines[0] == "| model | ΔE2000 ↓ | SSIM ↑ |"
    assert lines[3] == "| net | **11.25** [10.25, 12.25] | 11.2500 [10.2500, 12.2500] |"  # 2 and 4 decimals
    assert METRICS["psnr"].format(float("inf")) == "∞" and METRICS["kid"].format(None) == "n/a"
