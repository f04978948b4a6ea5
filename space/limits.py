"""How much the arena accepts per minute, per voter and from everyone together (read from the environment).

    limits = ArenaLimits.from_env()
    store = RatingsStore(data_dir, **limits.store_kwargs())

COLORLAB_VOTES_PER_MINUTE (per voter, default 30), COLORLAB_PAIRS_PER_MINUTE (per voter, default 60: every
"Next pair" runs two models), COLORLAB_ARENA_VOTES_PER_MINUTE and COLORLAB_ARENA_PAIRS_PER_MINUTE (everyone
together, default 600 each: a ceiling that many identities at once cannot lift, far above what the two-core
machine serves anyway: ~0.3 s of work per pair). 0 switches a limit off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WINDOW_S = 60.0


def _per_minute(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number of requests per minute (0 = no limit), not {raw!r}.")
    return int(raw)


@dataclass(frozen=True)
class ArenaLimits:
    votes_per_minute: int = 30
    pairs_per_minute: int = 60
    arena_votes_per_minute: int = 600
    arena_pairs_per_minute: int = 600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArenaLimits:
        env = os.environ if env is None else env
        return cls(
            _per_minute(env, "COLORLAB_VOTES_PER_MINUTE", cls.votes_per_minute),
            _per_minute(env, "COLORLAB_PAIRS_PER_MINUTE", cls.pairs_per_minute),
            _per_minute(env, "COLORLAB_ARENA_VOTES_PER_MINUTE", cls.arena_votes_per_minute),
            _per_minute(env, "COLORLAB_ARENA_PAIRS_PER_MINUTE", cls.arena_pairs_per_minute),
        )

    def store_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for judge.ratings.RatingsStore."""

        def window(count: int) -> tuple[int, float] | None:
            return (count, WINDOW_S) if count > 0 else None

        return {
            "rate_limit": window(self.votes_per_minute),
            "pair_limit": window(self.pairs_per_minute),
            "global_vote_limit": window(self.arena_votes_per_minute),
            "global_pair_limit": window(self.arena_pairs_per_minute),
        }
