"""Arena statistics: Bradley-Terry scores with bootstrap CIs, win rates, vote counts, MOS, a plot.

Pure functions over vote records: ``judge.ratings.Vote`` objects or mappings (for example rows read back
with ``judge.export.read_export``) with ``model_a``, ``model_b``, ``winner`` in {"a", "b", "tie",
"both_bad"} and optional 1-5 ``rating_a`` / ``rating_b``.

    table = leaderboard_table(store.votes(), models, min_votes=20)   # pandas DataFrame, best first
    fig = leaderboard_plot(table)                                    # matplotlib Figure (gr.Plot takes it)

Scores are on an Elo-like scale: ``1000 + 400 * log10(strength)`` with the geometric-mean strength at
1000, so a 400-point gap means 10:1 odds of winning. Ties count half a win for each side; "both bad"
counts as a tie (it says neither is preferred, which is exactly what a tie means to Bradley-Terry).
When ``models`` is given, votes involving other models are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import special, stats

WINNERS = ("a", "b", "tie", "both_bad")
ELO_SCALE = 400 / math.log(10)  # natural-log strength -> Elo points
# Each model plays this many virtual games (half won, half lost) against a virtual average model, so an
# unbeaten model gets a large but finite score, and a model with no votes sits at 1000.
PRIOR_GAMES = 1.0


class MOS(NamedTuple):
    """Mean opinion score with a two-sided CI (NaN when undefined: no ratings, or one for the CI)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


class _Record(NamedTuple):
    model_a: str
    model_b: str
    winner: str
    rating_a: int | None
    rating_b: int | None


def _field(vote: Any, name: str) -> Any:
    return vote.get(name) if isinstance(vote, Mapping) else getattr(vote, name, None)


def _records(votes: Iterable[Any], models: Sequence[str] | None) -> tuple[list[_Record], list[str]]:
    """Normalise votes to _Record (idempotent) and fix the model order (default: sorted names in the votes)."""
    records = [_Record(*(_field(vote, name) for name in _Record._fields)) for vote in votes]
    for r in records:
        if r.winner not in WINNERS:
            raise ValueError(f"A vote's winner must be one of {', '.join(WINNERS)}, not {r.winner!r}.")
    if models is None:
        models = sorted({r.model_a for r in records} | {r.model_b for r in records})
    known = set(models)
    return [r for r in records if r.model_a in known and r.model_b in known and r.model_a != r.model_b], list(models)


def _outcome_matrix(records: list[_Record], models: list[str]) -> np.ndarray:
    """(n_votes, k*k): vote v adds its win share to cell (winner-side i, loser-side j) = i*k + j.

    A's share is 1 for "a", 0 for "b" and 0.5 for "tie" and "both_bad" (both-bad is a tie for Bradley-Terry:
    neither image is preferred).
    """
    index = {m: i for i, m in enumerate(models)}
    k = len(models)
    a = np.array([index[r.model_a] for r in records], dtype=np.int64)
    b = np.array([index[r.model_b] for r in records], dtype=np.int64)
    share = np.array([{"a": 1.0, "b": 0.0}.get(r.winner, 0.5) for r in records])
    outcome = np.zeros((len(records), k * k))
    rows = np.arange(len(records))
    outcome[rows, a * k + b] += share
    outcome[rows, b * k + a] += 1.0 - share
    return outcome


def _log_likelihood(theta: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """Per row: sum of wins[i, j] * log P(i beats j), plus the virtual games (half won, half lost)."""
    diff = theta[:, :, None] - theta[:, None, :]
    prior = PRIOR_GAMES / 2 * (theta - 2 * np.logaddexp(0.0, theta))  # log sigmoid(t) + log sigmoid(-t), halved
    return -(wins * np.logaddexp(0.0, -diff)).sum(axis=(1, 2)) + prior.sum(axis=1)


def _fit(outcome: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Elo-scale scores for each row of ``weights`` (how often each vote counts): shape (n_rows, k).

    Maximum likelihood Bradley-Terry (a logistic regression on strength differences), all rows at once, by
    Newton's method with step halving. The PRIOR_GAMES against a virtual opponent of log-strength 0 make the
    likelihood strictly concave, so the maximum is unique and finite even for an unbeaten model; Newton
    reaches it in a handful of steps where Hunter's MM algorithm needs thousands on lopsided data.
    """
    rows = weights.shape[0]
    if k == 0:
        return np.zeros((rows, 0))
    wins = (weights @ outcome).reshape(rows, k, k)  # wins[r, i, j]: (fractional) wins of i over j
    games = wins + wins.transpose(0, 2, 1)
    won = wins.sum(axis=2) + PRIOR_GAMES / 2
    theta = np.zeros((rows, k))
    loglik = _log_likelihood(theta, wins)
    for _ in range(100):
        p = special.expit(theta[:, :, None] - theta[:, None, :])
        p_prior = special.expit(theta)
        grad = won - (games * p).sum(axis=2) - PRIOR_GAMES * p_prior
        hessian = games * p * (1.0 - p)  # off-diagonal; the diagonal is minus each row's sum (and the prior)
        diagonal = hessian.sum(axis=2) + PRIOR_GAMES * p_prior * (1.0 - p_prior)
        hessian[:, np.arange(k), np.arange(k)] = -diagonal
        step = -np.linalg.solve(hessian, grad[..., None])[..., 0]
        scale = np.ones((rows, 1))
        for _ in range(50):  # halve the step of rows whose likelihood would drop
            candidate = theta + scale * step
            new_loglik = _log_likelihood(candidate, wins)
            worse = new_loglik < loglik - 1e-12 * np.abs(loglik)
            if not worse.any():
                break
            scale[worse] /= 2
        theta, loglik = candidate, new_loglik
        if np.max(np.abs(scale * step)) < 1e-10:
            break
    return 1000.0 + ELO_SCALE * (theta - theta.mean(axis=1, keepdims=True))


def bradley_terry(votes: Iterable[Any], models: Sequence[str] | None = None) -> dict[str, float]:
    """Bradley-Terry score of each model on the Elo-like scale (mean 1000)."""
    records, models = _records(votes, models)
    scores = _fit(_outcome_matrix(records, models), len(models), np.ones((1, len(records))))[0]
    return dict(zip(models, scores.tolist(), strict=True))


def bootstrap_ci(
    votes: Iterable[Any],
    models: Sequence[str] | None = None,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI of each score: votes resampled with replacement, deterministic for a seed.

    A model with no votes gets (nan, nan): resampling nothing says nothing.
    """
    records, models = _records(votes, models)
    n = len(records)
    rng = np.random.default_rng(seed)
    # Resampling n votes with replacement == counting each vote multinomially often.
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float) if n else np.zeros((n_boot, 0))
    scores = _fit(_outcome_matrix(records, models), len(models), weights)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail], axis=0)
    counts = vote_counts(records, models)
    return {m: (float(low[i]), float(high[i])) if counts[m] else (math.nan, math.nan) for i, m in enumerate(models)}


def vote_counts(votes: Iterable[Any], models: Sequence[str] | None = None) -> dict[str, int]:
    """How many votes each model took part in."""
    records, models = _records(votes, models)
    counts = dict.fromkeys(models, 0)
    for r in records:
        counts[r.model_a] += 1
        counts[r.model_b] += 1
    return counts


def win_rate_matrix(votes: Iterable[Any], models: Sequence[str] | None = None) -> pd.DataFrame:
    """Row model's win rate against column model (ties and both-bad count half); NaN where they never met."""
    records, models = _records(votes, models)
    k = len(models)
    wins = _outcome_matrix(records, models).sum(axis=0).reshape(k, k)
    games = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, wins / games, np.nan)
    return pd.DataFrame(rate, index=pd.Index(models, name="model"), columns=pd.Index(models, name="opponent"))


def mos(ratings: Iterable[float | None], *, level: float = 0.95) -> MOS:
    """Mean opinion score of 1-5 ratings (None skipped) with a Student-t CI."""
    values = np.array([r for r in ratings if r is not None], dtype=float)
    n = len(values)
    if n == 0:
        return MOS(math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n == 1:
        return MOS(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return MOS(mean, mean - half, mean + half, n)


def leaderboard_table(
    votes: Iterable[Any],
    models: Sequence[str] | None = None,
    *,
    min_votes: int = 20,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per model, best score first; ``provisional`` marks models with fewer than ``min_votes`` votes."""
    records, models = _records(votes, models)
    scores = bradley_terry(records, models)
    cis = bootstrap_ci(records, models, n_boot=n_boot, seed=seed)
    counts = vote_counts(records, models)
    rows = []
    for model in models:
        as_a = [r for r in records if r.model_a == model]
        as_b = [r for r in records if r.model_b == model]
        # Outcomes from this model's side: "a" = it won.
        outcomes = [r.winner for r in as_a] + [{"a": "b", "b": "a"}.get(r.winner, r.winner) for r in as_b]
        wins, losses = outcomes.count("a"), outcomes.count("b")
        ties, both_bad = outcomes.count("tie"), outcomes.count("both_bad")
        score_mos = mos([r.rating_a for r in as_a] + [r.rating_b for r in as_b])
        rows.append(
            {
                "model": model,
                "score": scores[model],
                "ci_low": cis[model][0],
                "ci_high": cis[model][1],
                "votes": counts[model],
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "both_bad": both_bad,
                "win_rate": (wins + 0.5 * (ties + both_bad)) / counts[model] if counts[model] else math.nan,
                "mos": score_mos.mean,
                "mos_ci_low": score_mos.ci_low,
                "mos_ci_high": score_mos.ci_high,
                "ratings": score_mos.n,
                "provisional": counts[model] < min_votes,
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


TABLE_COLUMNS = [
    "model", "score", "ci_low", "ci_high", "votes", "wins", "losses", "ties", "both_bad", "win_rate",
    "mos", "mos_ci_low", "mos_ci_high", "ratings", "provisional",
]  # fmt: skip


def leaderboard_plot(table: pd.DataFrame) -> Figure:
    """Score of each model with its CI as whiskers; provisional models in grey. No pyplot: safe in threads."""
    fig = Figure(figsize=(7, 0.6 * max(len(table), 2) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    if table.empty:
        ax.text(0.5, 0.5, "No votes yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    rows = table.iloc[::-1].reset_index(drop=True)  # best at the top
    for y, row in rows.iterrows():
        color = "0.6" if row["provisional"] else "C0"
        err = [[row["score"] - row["ci_low"]], [row["ci_high"] - row["score"]]]
        ax.errorbar(row["score"], y, xerr=None if math.isnan(row["ci_low"]) else err, fmt="o", color=color, capsize=4)
    ax.set_yticks(
        range(len(rows)),
        [f"{m} (provisional)" if p else m for m, p in zip(rows["model"], rows["provisional"], strict=True)],
    )
    ax.axvline(1000, color="0.85", zorder=0)
    ax.set_xlabel("Bradley-Terry score (Elo scale, 95% bootstrap CI)")
    ax.set_title("Arena leaderboard")
    return fig
