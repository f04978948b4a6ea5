"""Voters whose votes the current ranking cannot explain: a per-voter sequential outlier test (Chatbot Arena's).

    flags = flag_outlier_voters(store.votes(), models)     # {voter_id: Flag(votes, reason)}
    counted = [v for v in votes if v.voter_id not in flags]

Deterministic models can always be recognised by someone who re-runs them, so identity checks and rate limits
alone cannot stop a voter who always picks one model. Public arenas therefore test each voter against the ranking
everyone else produces (Chiang et al. 2024, "Chatbot Arena", section on anomalous users): every vote gets a p-value
under the current Bradley-Terry ranking, and Fisher's method combines a voter's p-values sequentially,
M_j = -2 * sum(log p_i) ~ chi2(2j) for an honest voter. The voter is flagged at the first checkpoint j where M_j
exceeds the chi2 quantile at level ALPHA / (number of checkpoints) (Bonferroni over the looks).

The p-value of a vote is the mid-p-value, under the ranking, of the observed winner: q / 2 for a win of the model
the ranking expects to lose (probability q < 1/2), (1 + q) / 2 for a win of its favourite, 1 for a tie or "both
bad" (no evidence). Honest voters' statistics then stay below the chi2 mean (the test is conservative for them).
The ranking a voter is tested against leaves that voter out, gives every other voter at most VOICE_VOTES votes'
worth of weight (so a few prolific identities cannot make their preference "the ranking"), and is refitted without
the flagged voters until the flags stop changing.

Flagged voters are shadow-excluded: their votes stay in the database and the export (with the reason), only the
leaderboard leaves them out and says how many it left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from judge.leaderboard import ELO_SCALE, _field, _fit, _outcome_matrix, _records

ALPHA = 0.01  # family-wise false-flag rate per honest voter (before the test's own conservativeness)
CHECKPOINTS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
VOICE_VOTES = 20  # the most votes' worth one voter adds to the ranking others are tested against
MAX_ROUNDS = 5  # refits without the flagged voters; the flags settle in two or three


@dataclass(frozen=True)
class Flag:
    voter_id: str
    votes: int  # all of this voter's votes (all are left out of the leaderboard)
    reason: str


def _vote_p_values(edge: np.ndarray) -> np.ndarray:
    """Mid-p-value per vote from edge = strength(winner) - strength(loser) under the ranking.

    The observed winner had probability q = sigmoid(edge). Outcomes at most as likely as the observed one count in
    full, the observed one by half (the mid-p convention for discrete outcomes): q / 2 when the ranking's underdog
    won, (1 + q) / 2 when its favourite did. Without the half, a vote for the underdog at q = 0.33 adds only 2.2 to
    Fisher's statistic against the 2 per vote an honest voter's uniform p-values add, and a determined stuffer went
    unnoticed for hundreds of votes. NaN edges (ties and "both bad") give 1: no evidence either way.
    """
    probability = special.expit(np.nan_to_num(edge, nan=0.0))
    mid_p = np.where(probability < 0.5, probability / 2, (1.0 + probability) / 2)
    return np.where(np.isnan(edge), 1.0, np.minimum(mid_p, 1.0))


def _sequential_test(p_values: np.ndarray, alpha: float) -> tuple[int, float] | None:
    """(checkpoint, M) at the first checkpoint where Fisher's statistic exceeds its Bonferroni threshold."""
    statistic = np.cumsum(-2.0 * np.log(np.clip(p_values, 1e-300, 1.0)))
    level = alpha / len(CHECKPOINTS)
    for checkpoint in CHECKPOINTS:
        if checkpoint > len(p_values):
            return None
        value = float(statistic[checkpoint - 1])
        if value > stats.chi2.isf(level, 2 * checkpoint):
            return checkpoint, value
    return None


def _leave_out_fits(leave_out: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    """Elo-scale scores for each row of win counts, in chunks: one identity matrix per chunk, never voters^2."""
    parts = [
        _fit(rows, k, np.eye(len(rows))) for rows in np.array_split(leave_out, max(1, -(-len(leave_out) // chunk)))
    ]
    return np.concatenate(parts) if parts else np.zeros((0, k))


def flag_outlier_voters(
    votes: Iterable[Any], models: Sequence[str] | None = None, *, alpha: float = ALPHA
) -> dict[str, Flag]:
    """Voters whose votes the leave-one-voter-out ranking explains so badly that they are unlikely to be honest."""
    votes = list(votes)
    voter_ids = [_field(vote, "voter_id") for vote in votes]
    records, models = _records(votes, models)
    # _records drops votes for models outside `models`: keep voter ids aligned with the records kept.
    known = set(models)
    voter_ids = [
        voter
        for voter, vote in zip(voter_ids, votes, strict=True)
        if _field(vote, "model_a") in known
        and _field(vote, "model_b") in known
        and _field(vote, "model_a") != _field(vote, "model_b")
    ]
    if not records or len(models) < 2:
        return {}
    k = len(models)
    index = {model: i for i, model in enumerate(models)}
    outcome = _outcome_matrix(records, models)
    voters = sorted(set(voter_ids))
    position = {voter: n for n, voter in enumerate(voters)}
    owner = np.array([position[voter] for voter in voter_ids])
    per_voter = np.zeros((len(voters), k * k))
    np.add.at(per_voter, owner, outcome)
    # Each vote as (winner index, loser index); NaN-marked for ties and "both bad".
    decisive = np.array([r.winner in ("a", "b") for r in records])
    winner = np.array([index[r.model_a if r.winner != "b" else r.model_b] for r in records])
    loser = np.array([index[r.model_b if r.winner != "b" else r.model_a] for r in records])
    by_voter = [np.flatnonzero(owner == n) for n in range(len(voters))]
    # One voice per voter in the reference ranking: a voter's votes count at most VOICE_VOTES in total, so a few
    # prolific identities cannot pull the ranking they are tested against towards themselves.
    voice = np.array([min(1.0, VOICE_VOTES / len(rows)) for rows in by_voter])

    flagged: dict[str, Flag] = {}
    for _ in range(MAX_ROUNDS):
        excluded = np.array([voter in flagged for voter in voters])
        counted = per_voter * (voice * ~excluded)[:, None]
        # Row v: the ranking from every counted voter except v (leave-one-voter-out), as natural-log strengths.
        leave_out = counted.sum(axis=0, keepdims=True) - counted
        theta = (_leave_out_fits(leave_out, k) - 1000.0) / ELO_SCALE
        new: dict[str, Flag] = {}
        for n, voter in enumerate(voters):
            rows = by_voter[n]
            edge = theta[n, winner[rows]] - theta[n, loser[rows]]
            edge = np.where(decisive[rows], edge, np.nan)
            found = _sequential_test(_vote_p_values(edge), alpha)
            if found is not None:
                checkpoint, value = found
                reason = (
                    f"outlier: after {checkpoint} votes, Fisher's statistic {value:.0f} exceeds the "
                    f"chi2({2 * checkpoint}) threshold at p < {alpha / len(CHECKPOINTS):.1e} against the ranking of "
                    "the other voters"
                )
                new[voter] = Flag(voter, len(rows), reason)
        if new.keys() == flagged.keys():
            return new
        flagged = new
    return flagged


def excluded_summary(flags: dict[str, Flag]) -> str:
    """'N votes from K voters' for the leaderboard's note ('' when nothing is excluded)."""
    if not flags:
        return ""
    votes = sum(flag.votes for flag in flags.values())
    return f"{votes} vote{'s' if votes != 1 else ''} from {len(flags)} voter{'s' if len(flags) != 1 else ''}"


def reasons_by_voter(flags: dict[str, Flag]) -> dict[str, str]:
    return {voter: flag.reason for voter, flag in flags.items()}


def shadow_exclude(votes: Iterable[Any], models: Sequence[str] | None = None) -> tuple[list[Any], dict[str, Flag]]:
    """(the votes the leaderboard counts, the flags of the voters it leaves out); the input is not changed."""
    votes = list(votes)
    flags = flag_outlier_voters(votes, models)
    return [vote for vote in votes if _field(vote, "voter_id") not in flags], flags
