"""python benchmarks/bench_arena_attack.py [--honest 200] [--minutes 30] [--botnet 10] [--identify 12]

Can one person stuff the arena? Simulates honest voters with known preferences (Bradley-Terry strengths below)
and an attacker who recognises the worst model in every pair it appears in (re-running /colorize makes that
possible for deterministic models) and votes for it, from as many identities as it can get and up to every limit.
Prints the leaderboard each defence leaves, the attacker's detection rate and honest voters' false flags:

- no defences: the old app (X-Forwarded-For trusted, so a fresh forged identity per vote; no pair limits;
  no outlier test);
- identity + limits: the voter is the socket peer, so the attacker has only its real addresses (one, or a botnet
  of --botnet), each held to the per-voter and global limits of space.limits; every vote is still counted;
- identity + limits + outlier test: the leaderboard as the app now shows it (judge.outliers).

Every pair, vote and refusal goes through the real judge.ratings.RatingsStore (on /dev/shm where available, with a
simulated clock), so the limits are the store's own. Then it measures how often the attacker identifies the sides
of real arena rounds by re-running /colorize with the bundled colorizers: pixel-exact, and nearest by mean squared
error, with the arena's disguise (dither + jittered working size) off and on.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from judge.leaderboard import bradley_terry
from judge.outliers import shadow_exclude
from judge.ratings import RateLimited, RatingsStore
from models.flags import FlagParser
from space.limits import ArenaLimits

STRENGTH = {"best": 1150.0, "good": 1060.0, "fair": 990.0, "worst": 800.0}  # true Elo-scale preferences
TARGET = "worst"
SHA = "0" * 64
TIE_RATE = 0.1


@dataclass
class Outcome:
    votes: list
    attacker_ids: set[str]
    attacker_votes: int
    refused: int  # attacker requests the limits refused
    honest_refused: int  # honest requests the limits refused (the cost of the global ceilings under attack)


def _scratch() -> str:
    """A fresh folder on /dev/shm where available (fsync-heavy SQLite is fast there), removed at exit."""
    shm = Path("/dev/shm")
    folder = tempfile.mkdtemp(prefix="colorlab-attack-", dir=shm if shm.is_dir() else None)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _events(
    args: argparse.Namespace, attacker_addresses: list[str], rng: random.Random, pairs_per_minute: float
) -> list[tuple]:
    """(time, voter, is_attacker) for every pair request, in time order."""
    duration = args.minutes * 60.0
    events = []
    for voter in range(args.honest):
        for _ in range(max(1, int(rng.expovariate(1 / args.votes_per_honest)))):
            events.append((rng.uniform(0, duration), f"192.0.2.{voter}", False))
    interval = 60.0 / pairs_per_minute
    for address in attacker_addresses:
        start = rng.uniform(0, interval)
        events += [(start + k * interval, address, True) for k in range(int(duration / interval))]
    return sorted(events)


def simulate(
    args: argparse.Namespace, *, defended: bool, botnet: int, seed: int, votes_per_address: int | None = None
) -> Outcome:
    """One attack; `votes_per_address` caps each address's votes (an attacker staying under the outlier test)."""
    rng = random.Random(seed)
    clock = [0.0]
    limits = ArenaLimits().store_kwargs() if defended else {"rate_limit": (30, 60.0)}
    store = RatingsStore(_scratch(), models=list(STRENGTH), salt="attack-benchmark", clock=lambda: clock[0], **limits)
    pairs = list(itertools.combinations(STRENGTH, 2))
    addresses = [f"198.51.100.{n}" for n in range(botnet)]
    attacker_ids, attacker_votes, refused, honest_refused, forged = set(), 0, 0, 0, itertools.count()
    # Undefended, the attacker asks as fast as the server colorizes (~0.3 s a pair); defended, a little faster than
    # the per-voter pair limit allows, from every address it has.
    rate = args.server_pairs_per_minute if not defended else ArenaLimits().pairs_per_minute + 10
    cast: dict[str, int] = {}
    for time, address, attacker in _events(args, addresses, rng, rate):
        clock[0] = time
        first, second = rng.choice(pairs)
        if attacker and TARGET not in (first, second):
            continue  # the attacker skips pairs without its model (they cost it nothing but a request)
        if attacker and votes_per_address is not None and cast.get(address, 0) >= votes_per_address:
            continue
        # Without defences the attacker names itself afresh in X-Forwarded-For for every round.
        voter = f"forged-{next(forged)}" if attacker and not defended else address
        # Decide before the store picks the sides (at random, from the OS), so a seed gives the same votes.
        p_first = 1 / (1 + 10 ** ((STRENGTH[second] - STRENGTH[first]) / 400))
        preferred = (
            TARGET if attacker else None if rng.random() < TIE_RATE else first if rng.random() < p_first else second
        )
        try:
            pair = store.issue_pair(first, second, SHA, voter=voter)
            choice = "tie" if preferred is None else "a" if pair.model_a == preferred else "b"
            store.record_vote(pair.token, choice, voter=voter)
        except RateLimited:
            refused += attacker
            honest_refused += not attacker
            continue
        if attacker:
            attacker_ids.add(store.voter_id(voter))
            attacker_votes += 1
            cast[address] = cast.get(address, 0) + 1
    votes = store.votes()
    store.close()
    return Outcome(votes, attacker_ids, attacker_votes, refused, honest_refused)


def _board(votes: list) -> str:
    scores = bradley_terry(votes, list(STRENGTH))
    return "  ".join(f"{model} {scores[model]:.0f}" for model in sorted(scores, key=scores.get, reverse=True))


def _order(votes: list) -> list[str]:
    scores = bradley_terry(votes, list(STRENGTH))
    return sorted(scores, key=scores.get, reverse=True)


def run_statistics(args: argparse.Namespace) -> None:
    true_order = sorted(STRENGTH, key=STRENGTH.get, reverse=True)
    print(f"true preferences: {'  '.join(f'{m} {STRENGTH[m]:.0f}' for m in true_order)}")
    print(f"{args.honest} honest voters (mean {args.votes_per_honest:g} votes), {args.minutes:g} min, for '{TARGET}'")
    print()
    undefended = simulate(args, defended=False, botnet=1, seed=args.seed)
    honest = [v for v in undefended.votes if v.voter_id not in undefended.attacker_ids]
    print(f"honest votes only ({len(honest)} votes):                       {_board(honest)}")
    print(f"no defences ({undefended.attacker_votes} votes, as many forged ids):   {_board(undefended.votes)}")
    counted, flags = shadow_exclude(undefended.votes, list(STRENGTH))
    print(
        f"no defences + outlier test:                            {_board(counted)}   "
        f"({len(undefended.attacker_ids & set(flags))} of {len(undefended.attacker_ids)} one-vote identities flagged)"
    )
    print()
    scenarios = [(1, None), (args.botnet, None), (args.wide, 4)]
    for botnet, per_address in scenarios:
        outcome = simulate(args, defended=True, botnet=botnet, seed=args.seed, votes_per_address=per_address)
        counted, flags = shadow_exclude(outcome.votes, list(STRENGTH))
        caught = outcome.attacker_ids & set(flags)
        false_flags = set(flags) - outcome.attacker_ids
        honest_voters = {v.voter_id for v in outcome.votes} - outcome.attacker_ids
        excluded_attack = sum(1 for v in outcome.votes if v.voter_id in caught)
        cap = f", at most {per_address} votes each (under the test's first checkpoint)" if per_address else ""
        print(f"attacker with {botnet} real address(es){cap}:")
        print(
            f"  identity + limits:                {_board(outcome.votes)}   "
            f"({outcome.attacker_votes} attacker votes accepted, {outcome.refused} attacker and "
            f"{outcome.honest_refused} honest requests refused by the limits)"
        )
        print(f"  identity + limits + outlier test: {_board(counted)}")
        print(
            f"  detection: {len(caught)} of {len(outcome.attacker_ids)} attacker identities flagged "
            f"({len(caught) / max(1, len(outcome.attacker_ids)):.0%}), {excluded_attack} of "
            f"{outcome.attacker_votes} attacker votes excluded; honest voters flagged: {len(false_flags)} of "
            f"{len(honest_voters)}"
        )
        survived = _order(counted) == _order([v for v in outcome.votes if v.voter_id not in outcome.attacker_ids])
        print(f"  honest order survives: {'yes' if survived else 'NO'}")
        print()


def run_identification(args: argparse.Namespace) -> None:
    """Rounds of the real arena (bundled colorizers, example photos); the attacker re-runs /colorize at 256."""
    from space import app_logic as logic
    from space.model_pool import ModelPool, configured_specs
    from space.outputs import OutputFolder

    specs, _ = configured_specs({})
    pool = ModelPool.load(specs)
    if pool.fallback_used or len(pool.names()) < 2:
        print("identification: skipped (the bundled colorizers did not load)")
        return
    root = Path(_scratch())
    print(f"identification over {args.identify} arena rounds per setting ({', '.join(pool.names())}):")
    for disguise in (False, True):
        store = RatingsStore(root / f"data-{disguise}", rate_limit=None)
        ctx = logic.AppContext.build(pool, store, outputs=OutputFolder(root / f"out-{disguise}"), seed=args.seed)
        ctx.arena.disguise = disguise
        exact = nearest = 0
        for round_index in range(args.identify):
            example = ctx.examples[round_index % len(ctx.examples)]
            round_ = logic.arena_round(ctx, example.path, voter="attacker")
            shown = np.asarray(_load(round_.image_a), dtype=np.float64)
            rerun = logic.colorize(ctx, example.path, pool.names(), working_size=256)
            candidates = {r.name: np.asarray(_load(r.image), dtype=np.float64) for r in rerun.results}
            truth = logic.arena_vote(ctx, round_.token, "tie", voter="attacker").model_a
            matches = [name for name, image in candidates.items() if np.array_equal(image, shown)]
            exact += matches == [truth]
            errors = {name: float(np.mean((image - shown) ** 2)) for name, image in candidates.items()}
            nearest += min(errors, key=errors.get) == truth
        store.close()
        label = "disguise on " if disguise else "disguise off"
        print(
            f"  {label}: pixel-exact {exact}/{args.identify} ({exact / args.identify:.0%}), "
            f"nearest by MSE {nearest}/{args.identify} ({nearest / args.identify:.0%})"
        )


def _load(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = FlagParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--honest", type=int, default=200, help="honest voters")
    parser.add_argument("--votes_per_honest", type=float, default=8.0, help="mean votes per honest voter")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the attack runs")
    parser.add_argument("--botnet", type=int, default=10, help="real addresses of the larger attacker")
    parser.add_argument("--wide", type=int, default=300, help="addresses of the attacker that votes 4 times from each")
    parser.add_argument("--server_pairs_per_minute", type=float, default=200.0, help="undefended attacker's pace")
    parser.add_argument("--identify", type=int, default=12, help="arena rounds for the identification test (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run_statistics(args)
    if args.identify:
        run_identification(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
