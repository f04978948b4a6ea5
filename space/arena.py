"""The blind A/B arena: balanced pair scheduling, anonymous rounds, and votes that name only a token.

    voters = VoterPolicy.from_env()  # space.identity: the account or the peer address, never the session hash
    arena = Arena(pool, store, outputs, examples)
    round_ = arena.new_round(upload_path_or_None, voter=voters.voter(request), consent=False)
    # show round_.image_a as "A" and round_.image_b as "B"; keep round_.token server-side (gr.State)
    vote = arena.vote(round_.token, "a", voter=voters.voter(request), rating_a=4)
    # only now reveal vote.model_a / vote.model_b

Balance: the next pair is the unordered pair with the fewest votes so far plus rounds shown but not
voted yet, ties broken at random, so every pair collects votes at the same pace however many
people vote at once. Sides are randomised by the ratings store when it issues the token. Output
files get random names, so nothing the browser receives names a model before the vote.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from judge.ratings import RatingsStore, Vote, image_sha256
from models.color import lab_to_srgb8
from models.colorizer import PreparedImage, prepare_image
from space.examples import Example
from space.model_pool import ModelPool
from space.outputs import OutputFolder
from space.uploads import UploadReader

Pair = frozenset[str]


class ArenaError(ValueError):
    """The arena cannot run a round (too few models); the message says what to do."""


class PairScheduler:
    """Chooses the least-voted pair; sees votes from every process through the store, pending rounds in this one."""

    def __init__(
        self, store: RatingsStore, models: Sequence[str], *, pending_ttl_s: float = 600.0, seed: int | None = None
    ) -> None:
        if len(models) < 2:
            raise ArenaError(f"The arena needs at least two models, but only {len(models)} is loaded; add models.")
        self.store = store
        self.pairs: list[Pair] = [frozenset(pair) for pair in itertools.combinations(models, 2)]
        self.pending_ttl_s = pending_ttl_s
        self._votes: Counter[Pair] = Counter()
        self._last_vote_id = 0
        self._pending: dict[str, tuple[Pair, float]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def _refresh(self) -> None:
        # Only votes newer than the last seen id: cheap however many votes the store holds.
        for vote in self.store.votes(after_id=self._last_vote_id):
            self._votes[frozenset((vote.model_a, vote.model_b))] += 1
            self._last_vote_id = vote.vote_id
        cutoff = time.monotonic() - self.pending_ttl_s
        for token in [t for t, (_, shown) in self._pending.items() if shown < cutoff]:
            del self._pending[token]  # abandoned rounds stop holding their pair back

    def load(self) -> dict[Pair, int]:
        """Votes plus pending rounds per pair (what `choose` balances)."""
        with self._lock:
            self._refresh()
            pending = Counter(pair for pair, _ in self._pending.values())
            return {pair: self._votes[pair] + pending[pair] for pair in self.pairs}

    def choose(self) -> tuple[str, str]:
        """The next pair, as two names in random order."""
        load = self.load()
        lowest = min(load.values())
        with self._lock:
            pair = self._rng.choice([p for p in self.pairs if load[p] == lowest])
            names = sorted(pair)
            self._rng.shuffle(names)
        return names[0], names[1]

    def shown(self, token: str, model_a: str, model_b: str) -> None:
        with self._lock:
            self._pending[token] = (frozenset((model_a, model_b)), time.monotonic())

    def finished(self, token: str) -> None:
        with self._lock:
            self._pending.pop(token, None)


# Re-identification: a deterministic model gives byte-identical output when someone re-runs the same photo through
# /colorize, which told the sides apart in 10 of 10 rounds. Each round therefore runs at a working size drawn from
# these offsets (both sides alike) and gets +-1/255 of random dither: invisible, but never byte-identical. An
# attacker who compares approximately can still tell the models apart (benchmarks/bench_arena_attack.py measures
# it), which is why the ranking is defended statistically too (judge.outliers).
SIZE_JITTER = (-32, 0, 32)


def dither(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """`image` with -1, 0 or +1 added at random to each colour value (alpha untouched)."""
    if image.mode not in ("RGB", "RGBA"):
        return image
    array = np.array(image)
    colour = array[..., :3].astype(np.int16) + rng.integers(-1, 2, size=array[..., :3].shape, dtype=np.int16)
    array[..., :3] = np.clip(colour, 0, 255).astype(np.uint8)
    return Image.fromarray(array, image.mode)


@dataclass(frozen=True)
class ArenaRound:
    """What the browser may see before the vote: the gray input, two colorizations and nothing about their models."""

    token: str
    image_a: Path
    image_b: Path
    example: str | None  # the example's caption, or None for an upload
    gray: Path  # what both models saw: the photo's CIELAB lightness, shown beside A and B


def gray_version(photo: Image.Image | PreparedImage) -> Image.Image:
    """The photo as the models see it: its CIELAB L with no colour (a colour upload's own colours stay hidden)."""
    lightness = prepare_image(photo).lightness[0]  # (1, H, W), L in [0, 100]
    lab = torch.cat([lightness, torch.zeros_like(lightness), torch.zeros_like(lightness)])
    return Image.fromarray(lab_to_srgb8(lab, fit_gamut=False).numpy()[..., 0], mode="L")


class Arena:
    def __init__(
        self,
        pool: ModelPool,
        store: RatingsStore,
        outputs: OutputFolder,
        examples: Sequence[Example],
        *,
        working_size: int = 256,
        seed: int | None = None,
        uploads: UploadReader | None = None,
        disguise: bool = True,
    ) -> None:
        self.pool = pool
        self.store = store
        self.outputs = outputs
        self.examples = list(examples)
        self.working_size = working_size
        self.scheduler = PairScheduler(store, pool.names(), seed=seed)
        self._rng = random.Random(seed)
        self.uploads = uploads or UploadReader()
        self.disguise = disguise
        self._noise = np.random.default_rng()  # unpredictable on purpose: the disguise must not be replayable

    def _pick_path(self, upload: str | Path | None) -> tuple[Path, str | None]:
        if upload:
            return Path(upload), None
        if not self.examples:
            raise ArenaError("No example photos are available; upload a photo to start a round.")
        example = self._rng.choice(self.examples)
        return example.path, example.caption

    def new_round(self, upload: str | Path | None, *, voter: str, consent: bool = False) -> ArenaRound:
        """Colorize one photo (the upload, else a random example) with the next pair and issue its token."""
        self.store.check_pair_allowed(voter)  # refuse before the costly part, not after
        path, caption = self._pick_path(upload)
        # One-sentence ImageInputError for anything unreadable; large photos wait for each other.
        with self.uploads.open(path) as photo:
            return self._round(photo.data, photo.image, caption, voter=voter, keep=bool(upload) and consent)

    def _round(self, data: bytes, image: Image.Image, caption: str | None, *, voter: str, keep: bool) -> ArenaRound:
        first, second = self.scheduler.choose()
        reservation = uuid.uuid4().hex  # counts as pending while colorizing, so concurrent rounds spread out
        self.scheduler.shown(reservation, first, second)
        # Both sides share one working size, so the comparison stays fair.
        size = self.working_size + (int(self._noise.choice(SIZE_JITTER)) if self.disguise else 0)
        photo = prepare_image(image)  # decoded and its full-resolution L computed once: both sides and the gray input
        try:
            colored = {
                name: self.pool.get(name).colorize(photo, working_size=size, saturation=1.0)
                for name in (first, second)
            }
            sha = image_sha256(data)
            pair = self.store.issue_pair(first, second, sha, voter=voter)  # the store picks the sides
            self.scheduler.shown(pair.token, pair.model_a, pair.model_b)
        finally:
            self.scheduler.finished(reservation)
        if keep:
            self.store.store_image(sha, data, consent=True)
        folder = self.outputs.new_request()
        if self.disguise:
            colored = {name: dither(colored[name], self._noise) for name in colored}
        paths = [
            self.outputs.save_png(colored[name], folder / f"{side}.png")
            for side, name in (("A", pair.model_a), ("B", pair.model_b))
        ]
        gray = self.outputs.save_png(gray_version(photo), folder / "input.png")
        return ArenaRound(pair.token, paths[0], paths[1], caption, gray=gray)

    def vote(
        self, token: str, choice: str, *, voter: str, rating_a: int | None = None, rating_b: int | None = None
    ) -> Vote:
        """Store the vote for the round behind `token`; raises a RatingsError subclass when refused."""
        vote = self.store.record_vote(token, choice, voter=voter, rating_a=rating_a, rating_b=rating_b)
        self.scheduler.finished(token)
        return vote
