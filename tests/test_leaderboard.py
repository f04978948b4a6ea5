"""python -m pytest tests/test_leaderboard.py -q

Bradley-Terry scores, bootstrap CIs, win rates, MOS and the leaderboard table/plot.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from judge.leaderboard import (
    bootstrap_ci,
    bradley_terry,
    leaderboard_plot,
    leaderboard_table,
    mos,
    vote_counts,
    win_rate_matrix,
)

TRUE_SCORES = {"m0": 1150.0, "m1": 1050.0, "m2": 950.0, "m3": 850.0}  # Elo scale, mean 1000


def vote(a: str, b: str, winner: str, rating_a: int | None = None, rating_b: int | None = None) -> dict:
    return {"model_a": a, "model_b": b, "winner": winner, "rating_a": rating_a, "rating_b": rating_b}


def simulate(n: int, seed: int) -> list[dict]:
    """Votes drawn from the Bradley-Terry model with TRUE_SCORES, random pairs and sides."""
    rng = np.random.default_rng(seed)
    models = list(TRUE_SCORES)
    votes = []
    for _ in range(n):
        i, j = rng.choice(len(models), size=2, replace=False)
        a, b = models[i], models[j]
        p_a = 1.0 / (1.0 + 10 ** ((TRUE_SCORES[b] - TRUE_SCORES[a]) / 400))
        votes.append(vote(a, b, "a" if rng.random() < p_a else "b"))
    return votes


@pytest.fixture(scope="module")
def simulated() -> list[dict]:
    return simulate(3000, seed=0)


def test_bradley_terry_recovers_known_strengths(simulated):
    scores = bradley_terry(simulated, list(TRUE_SCORES))
    assert sorted(scores, key=scores.get, reverse=True) == list(TRUE_SCORES)
    for model, truth in TRUE_SCORES.items():
        assert scores[model] == pytest.approx(truth, abs=40), model  # ~3 standard errors at 750 votes per model
    assert np.mean(list(scores.values())) == pytest.approx(1000.0)


def test_bootstrap_cis_cover_the_true_strengths(simulated):
    scores = bradley_terry(simulated, list(TRUE_SCORES))
    cis = bootstrap_ci(simulated, list(TRUE_SCORES), n_boot=200, seed=0)
    for model, truth in TRUE_SCORES.items():
        low, high = cis[model]
        assert low < scores[model] < high
        assert low <= truth <= high, f"{model}: CI {low:.0f}..{high:.0f} misses {truth}"
        assert high - low < 100  # informative, not merely wide


def test_bootstrap_is_deterministic_for_a_seed(simulated):
    votes = simulated[:300]
    assert bootstrap_ci(votes, seed=3) == bootstrap_ci(votes, seed=3)
    assert bootstrap_ci(votes, seed=3) != bootstrap_ci(votes, seed=4)


def test_a_400_point_gap_means_ten_to_one_odds():
    scores = bradley_terry([vote("x", "y", "a")] * 1000 + [vote("x", "y", "b")] * 100)
    assert scores["x"] - scores["y"] == pytest.approx(400, abs=3)  # the one-game prior shifts it a little


def test_ties_and_both_bad_count_half_a_win_each():
    base = [vote("x", "y", "a")] * 6 + [vote("y", "z", "a")] * 3 + [vote("x", "z", "b")]
    with_ties = [*base, vote("x", "y", "tie"), vote("y", "x", "both_bad")]
    with_split = [*base, vote("x", "y", "a"), vote("x", "y", "b")]
    assert bradley_terry(with_ties) == pytest.approx(bradley_terry(with_split))
    assert bradley_terry(with_ties) != pytest.approx(bradley_terry(base))  # the ties did count

    rates = win_rate_matrix([vote("x", "y", "a"), vote("y", "x", "tie")])
    assert rates.loc["x", "y"] == 0.75 and rates.loc["y", "x"] == 0.25
    assert math.isnan(rates.loc["x", "x"])


def test_an_unbeaten_model_gets_a_finite_top_score():
    scores = bradley_terry([vote("x", "y", "a")] * 20 + [vote("y", "z", "a")] * 10 + [vote("z", "y", "a")] * 10)
    assert all(math.isfinite(s) for s in scores.values())
    assert scores["x"] > scores["z"] > scores["y"]  # y and z split 10-10, but y also lost to x
    assert scores["x"] < 2500


def test_models_argument_fixes_the_set_and_drops_other_votes():
    votes = [vote("x", "y", "a"), vote("x", "retired", "b"), vote("retired", "y", "a")]
    assert vote_counts(votes, ["x", "y", "new"]) == {"x": 1, "y": 1, "new": 0}
    scores = bradley_terry(votes, ["x", "y", "new"])
    assert scores == pytest.approx(bradley_terry(votes[:1], ["x", "y", "new"]))  # the "retired" votes are out
    assert scores["x"] > scores["new"] > scores["y"]
    assert scores["new"] == pytest.approx(1000.0)  # no votes: the prior's average
    assert math.isnan(bootstrap_ci(votes, ["x", "y", "new"])["new"][0])  # no votes: no interval


def test_unknown_winner_is_refused():
    with pytest.raises(ValueError, match="winner must be one of"):
        bradley_terry([vote("x", "y", "left")])


def test_mos_mean_and_student_t_interval():
    result = mos([3, 4, 5, None])
    assert (result.mean, result.n) == (4.0, 3)
    half = 4.302653 / math.sqrt(3)  # t(0.975, df=2) * sd 1 / sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((4 - half, 4 + half), rel=1e-5)
    assert math.isnan(mos([]).mean) and mos([]).n == 0
    assert mos([5]).mean == 5 and math.isnan(mos([5]).ci_low)


def test_leaderboard_table_rows_counts_mos_and_provisional():
    votes = (
        [vote("good", "bad", "a", rating_a=5, rating_b=1)] * 20
        + [vote("bad", "good", "tie", rating_a=2, rating_b=4)] * 4
        + [vote("good", "bad", "both_bad")] * 2
        + [vote("good", "rare", "a", rating_b=3)]
    )
    table = leaderboard_table(votes, ["rare", "bad", "good", "unseen"], min_votes=10, n_boot=50)
    assert list(table["model"]) == ["good", "unseen", "rare", "bad"]  # rare lost its one game
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    row = table.set_index("model")
    assert row.loc["good", ["votes", "wins", "losses", "ties", "both_bad"]].tolist() == [27, 21, 0, 4, 2]
    assert row.loc["bad", ["wins", "losses"]].tolist() == [0, 20]
    assert row.loc["good", "win_rate"] == pytest.approx((21 + 0.5 * 6) / 27)
    # Each rating belongs to the model shown on its side.
    assert row.loc["good", "mos"] == pytest.approx((20 * 5 + 4 * 4) / 24)
    assert row.loc["bad", "mos"] == pytest.approx((20 * 1 + 4 * 2) / 24)
    assert row.loc["rare", "mos"] == 3 and row.loc["rare", "ratings"] == 1
    assert row["provisional"].to_dict() == {"good": False, "bad": False, "rare": True, "unseen": True}
    assert row.loc["good", "ci_low"] < row.loc["good", "score"] < row.loc["good", "ci_high"]


def test_leaderboard_plot_marks_provisional_models():
    table = leaderboard_table([vote("x", "y", "a")] * 30 + [vote("x", "z", "b")] * 2, min_votes=10, n_boot=20)
    fig = leaderboard_plot(table)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == ["x", "y", "z (provisional)"]
    empty = leaderboard_plot(leaderboard_table([]))
    assert any(t.get_text() == "No votes yet" for t in empty.axes[0].texts)
