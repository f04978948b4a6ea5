"""Join the arena's human ratings with the evaluation's metrics (used by `python -m judge.evaluate --ratings`).

    votes = load_votes("data/ratings.sqlite3")     # the app's database (or its folder, or an export file)
    section = human_section(votes, ["grayscale", "pix2pix", "unet"], summary)

Bradley-Terry scores, their bootstrap CIs and MOS come from `judge.leaderboard` (the same numbers the
app's leaderboard shows); this module only matches models by name and measures how well each metric's
ranking of the models agrees with people's (Spearman's rho and Kendall's tau against the BT score).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from judge.metrics import HIGHER_IS_BETTER

MIN_MODELS_FOR_CORRELATION = 3
EXPORT_SUFFIXES = (".jsonl", ".csv", ".parquet")


def load_votes(path: str | os.PathLike[str]) -> list[Any]:
    """The votes the app's leaderboard counts (judge.outliers leaves flagged voters out), from the app's ratings
    database (the .sqlite3 file or its data folder) or a vote export file."""
    from judge.outliers import shadow_exclude

    return shadow_exclude(_all_votes(path))[0]


def _all_votes(path: str | os.PathLike[str]) -> list[Any]:
    from judge.ratings import DB_NAME, RatingsStore

    path = Path(path).expanduser()
    if path.suffix in EXPORT_SUFFIXES and path.is_file():
        from judge.export import read_export

        return read_export(path)
    folder = path if path.is_dir() else path.parent
    # Check before opening: RatingsStore would create an empty database where none exists.
    if not (folder / DB_NAME).is_file() or (path.is_file() and path.name != DB_NAME):
        raise ValueError(
            f"--ratings {path}: no ratings database there; pass the app's {DB_NAME} (or its data folder) or a "
            f"vote export ({', '.join(EXPORT_SUFFIXES)}) from `python -m judge.ratings export`."
        )
    with RatingsStore(folder) as store:
        return store.votes()


def _number(value: Any) -> float | None:
    """JSON-friendly float: NaN (undefined) becomes None."""
    value = float(value)
    return None if math.isnan(value) else value


def _correlation(metric_values: list[float], human: list[float]) -> dict[str, float | None]:
    if len(set(metric_values)) < 2 or len(set(human)) < 2:
        return {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}  # constant: undefined
    rho, rho_p = stats.spearmanr(metric_values, human)
    tau, tau_p = stats.kendalltau(metric_values, human)
    return {
        "spearman": _number(rho),
        "spearman_p": _number(rho_p),
        "kendall": _number(tau),
        "kendall_p": _number(tau_p),
    }


def human_section(
    votes: list[Any], names: list[str], summary: dict[str, dict[str, dict]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Per-model BT score / MOS with CIs, and per-metric rank correlations with the BT score.

    `summary[model][metric]["mean"]` are the evaluation's means. Scores are fitted on every model in the
    votes (BT is relative to the whole pool), then matched to the evaluated models by name.
    """
    from judge.leaderboard import leaderboard_table

    table = leaderboard_table(votes, n_boot=n_boot, seed=seed, min_votes=1)
    by_name = {row["model"]: row for row in table.to_dict("records")}
    models: dict[str, dict[str, Any] | None] = {}
    for name in names:
        row = by_name.get(name)
        if row is None or not row["votes"]:
            models[name] = None  # evaluated but never shown in the arena
            continue
        models[name] = {
            "bt_score": _number(row["score"]),
            "bt_ci": [_number(row["ci_low"]), _number(row["ci_high"])],
            "votes": int(row["votes"]),
            "win_rate": _number(row["win_rate"]),
            "mos": _number(row["mos"]),
            "mos_ci": [_number(row["mos_ci_low"]), _number(row["mos_ci_high"])],
            "ratings": int(row["ratings"]),
        }
    rated = [name for name in names if models[name] is not None]
    section: dict[str, Any] = {
        "n_votes": len(votes),
        "models": models,
        "rated_models": rated,
        "unmatched_in_votes": sorted(set(by_name) - set(names)),
        "correlations": {},
    }
    if len(rated) < MIN_MODELS_FOR_CORRELATION:
        section["correlations_note"] = (
            f"rank correlations need at least {MIN_MODELS_FOR_CORRELATION} evaluated models with votes; "
            f"{len(rated)} matched ({', '.join(rated) or 'none'})"
        )
        return section
    human = [models[name]["bt_score"] for name in rated]
    metric_names = [m for m in summary[rated[0]] if all(m in summary[name] for name in rated)]
    for metric in metric_names:
        values = [summary[name][metric]["mean"] for name in rated]
        if not np.isfinite(values).all():
            section["correlations"][metric] = {"note": "a mean is infinite (a perfect image); ranks are not defined"}
            continue
        section["correlations"][metric] = {
            **_correlation(values, human),
            "n_models": len(rated),
            "higher_is_better": HIGHER_IS_BETTER.get(metric),
        }
    return section
