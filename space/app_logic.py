"""What the Gradio UI calls: plain functions over an `AppContext`, testable without a browser or a server.

    ctx = AppContext.from_env()        # models, ratings store, arena, examples, output folder
    outcome = colorize(ctx, "photo.jpg", ["unet_classes"], working_size=0, saturation=1.0)  # 0: native size
    outcome = colorize(ctx, "photo.jpg", ["controlnet"], options={"num_samples": 4}, cancel_event=event)
    outcome = colorize(ctx, "photo.jpg", ["colour_hints", "unet"], hints=[Hint(40, 30, rgb=(200, 30, 40))])
    board = leaderboard_view(ctx)      # tables and a figure, cached until a new vote arrives

Environment: `COLORLAB_MODELS` (see space.model_pool), `COLORLAB_DATA_DIR` (ratings; see
judge.ratings.default_data_dir), `COLORLAB_MIN_VOTES` (below it a model is provisional, default 20),
`COLORLAB_RATINGS_REPO` + `HF_TOKEN` (optional Hub sync of votes, see judge.sync).
Every refusal is a ValueError or a judge.ratings.RatingsError whose message is one sentence for the user.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from judge.leaderboard import leaderboard_plot, leaderboard_table, win_rate_matrix
from judge.outliers import excluded_summary, shadow_exclude
from judge.ratings import RatingsStore, Vote
from models.colorizer import prepare_image
from models.hints import Hint, HintError, check_hints
from space.arena import Arena, ArenaError, ArenaRound
from space.examples import Example, prepare_examples
from space.identity import VoterPolicy
from space.limits import ArenaLimits
from space.model_pool import ModelPool, PoolEntry
from space.outputs import OutputFolder, safe_stem
from space.uploads import Upload, UploadReader

WORKING_SIZE_RANGE = (64, 1024)
AUTO_WORKING_SIZE = 0  # the slider's "auto": every model runs at its own native working size (from its config)
SATURATION_RANGE = (0.0, 2.0)
# Sampling options of diffusion colorizers a request may set (others are refused before any work).
SAMPLES_RANGE = (1, 8)
STEPS_RANGE = (1, 100)
SEED_RANGE = (0, 2**31 - 1)
MAX_PROMPT_CHARS = 300
DEFAULT_MIN_VOTES = 20
logger = logging.getLogger(__name__)


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}.") from None


class CancelRegistry:
    """The cancel events of running colorize requests by browser session: Cancel stops that session's sampling."""

    def __init__(self) -> None:
        self._events: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, session: str) -> Iterator[threading.Event]:
        """A fresh event for one request, registered under `session` while the request runs."""
        event = threading.Event()
        with self._lock:
            self._events.setdefault(session, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                group = self._events.get(session, set())
                group.discard(event)
                if not group:
                    self._events.pop(session, None)

    def cancel(self, session: str) -> int:
        """Set the events of every request `session` is running; returns how many there were."""
        with self._lock:
            events = list(self._events.get(session, ()))
        for event in events:
            event.set()
        return len(events)


@dataclass
class AppContext:
    """Everything the handlers share; built once per process (the UI builds it at import)."""

    pool: ModelPool
    store: RatingsStore
    outputs: OutputFolder
    examples: list[Example]
    arena: Arena | None
    arena_problem: str = ""  # why the arena is off (fewer than two models)
    min_votes: int = DEFAULT_MIN_VOTES
    sync: Any = None
    cancels: CancelRegistry = field(default_factory=CancelRegistry)
    uploads: UploadReader = field(default_factory=UploadReader)
    voters: VoterPolicy = field(default_factory=VoterPolicy)
    _board_cache: tuple[Any, LeaderboardView] | None = field(default=None, repr=False)
    _board_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls,
        pool: ModelPool,
        store: RatingsStore,
        *,
        outputs: OutputFolder | None = None,
        examples_dir: Path | None = None,
        min_votes: int = DEFAULT_MIN_VOTES,
        seed: int | None = None,
        uploads: UploadReader | None = None,
    ) -> AppContext:
        outputs = outputs or OutputFolder()
        uploads = uploads or UploadReader()
        examples = prepare_examples(examples_dir or outputs.root / "examples")
        store.set_models(pool.names())
        try:
            arena, problem = Arena(pool, store, outputs, examples, seed=seed, uploads=uploads), ""
        except ArenaError as error:
            arena, problem = None, str(error)
        return cls(pool, store, outputs, examples, arena, problem, min_votes, uploads=uploads)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppContext:
        """The app's context from the environment (see the module docstring); starts the optional vote sync."""
        from judge.sync import start_hub_sync  # huggingface_hub's CommitScheduler: only when sync is on

        env = os.environ if env is None else env
        min_votes = _env_int(env, "COLORLAB_MIN_VOTES", DEFAULT_MIN_VOTES)
        pool = ModelPool.from_env(env)
        store = RatingsStore(env.get("COLORLAB_DATA_DIR") or None, **ArenaLimits.from_env(env).store_kwargs())
        context = cls.build(pool, store, min_votes=min_votes, uploads=UploadReader.from_env(env))
        context.voters = VoterPolicy.from_env(env)
        context.sync = start_hub_sync(store)
        return context


# --- Colorize ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelResult:
    name: str
    image: Path | None  # full-resolution PNG (also the download), None when this model failed
    seconds: float
    error: str = ""
    samples: tuple[Path, ...] = ()  # every colouring (image is the first); several for diffusion models
    working_size: int = 0  # what the model ran at (diffusion models sample at the size they were trained at)
    hinted: bool = False  # the request's colour points were given to this model
    hint_note: str = ""  # with colour points: whether this model was given them (never implied when it was not)


@dataclass(frozen=True)
class ColorizeOutcome:
    input_image: Path  # the input as PNG, the "before" side of every slider
    size: tuple[int, int]
    results: list[ModelResult]
    cancelled: bool = False  # Cancel was pressed: `results` holds the models that finished before it
    hints: int = 0  # how many colour points the request carried


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The diffusion sampling options of a request, range-checked (num_samples, num_inference_steps, seed, prompt)."""
    checked = dict(options or {})
    for key, label, bounds in (
        ("num_samples", "The number of samples", SAMPLES_RANGE),
        ("num_inference_steps", "The number of sampling steps", STEPS_RANGE),
        ("seed", "The seed", SEED_RANGE),
    ):
        if key in checked:
            value = check_range(label, checked[key], bounds)
            if value != int(value):
                raise ValueError(f"{label} must be a whole number, not {value!r}.")
            checked[key] = int(value)
    if "prompt" in checked:
        prompt = checked["prompt"]
        if prompt is None:
            prompt = ""
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"The prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
        checked["prompt"] = prompt.strip()
    return checked


def check_range(name: str, value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if value is None or not isinstance(value, int | float) or math.isnan(value) or not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value!r}.")
    return value


def hint_models(ctx: AppContext) -> list[str]:
    """The served models that follow colour points, in the pool's order."""
    return [name for name, entry in ctx.pool.entries.items() if entry.takes_hints]


def hint_note(takes_hints: bool, count: int) -> str:
    """What a result's caption says about the request's colour points ('' without points)."""
    if not count:
        return ""
    if not takes_hints:
        return "automatic: this model does not take hints"
    return f"with your {count} colour point{'s' if count != 1 else ''}"


def colorize(
    ctx: AppContext,
    image_path: str | Path | None,
    model_names: Sequence[str] | None,
    *,
    working_size: int = AUTO_WORKING_SIZE,
    saturation: float = 1.0,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel_event: threading.Event | None = None,
    hints: Sequence[Hint] | None = None,
) -> ColorizeOutcome:
    """Colorize one uploaded image with each chosen model at full resolution; one model failing spares the rest.

    Diffusion models draw `options["num_samples"]` colourings each and report `progress(model, step, total)`.
    Setting `cancel_event` stops the sampling at its next step and skips the models not started yet; the
    outcome is then marked cancelled and keeps the models that had finished.
    `hints` (colour points in the photo's pixels, see space.hint_state) go to the models that take them, which
    then run first; the others colorize automatically and their `hint_note` says so.
    """
    if not image_path:
        raise ValueError("Upload a photo or pick an example first.")
    entries = ctx.pool.select(model_names)  # refuses names that are not served
    hints = list(hints or [])
    if not all(isinstance(hint, Hint) for hint in hints):
        raise HintError("The colour points were not understood; press 'Clear points' and place them again.")
    if hints:  # the models that follow the points are shown first (a stable sort keeps the pool's order otherwise)
        entries = sorted(entries, key=lambda entry: not entry.takes_hints)
    if working_size is None or working_size == AUTO_WORKING_SIZE:
        working_size = AUTO_WORKING_SIZE
    else:
        working_size = int(check_range("The working size", working_size, WORKING_SIZE_RANGE))
    saturation = float(check_range("The saturation", saturation, SATURATION_RANGE))
    options = check_options(options)
    # The file itself, decoded by the project's reader: every bad upload is one sentence naming the user's file.
    with ctx.uploads.open(image_path) as upload:
        check_hints(hints, upload.image.size)  # the points must lie on the photo as decoded (EXIF applied)
        return _colorize_image(ctx, upload, entries, working_size, saturation, options, progress, cancel_event, hints)


def _colorize_image(
    ctx: AppContext,
    upload: Upload,
    entries: Sequence[PoolEntry],
    working_size: int,
    saturation: float,
    options: dict[str, Any],
    progress: Callable[[str, int, int], None] | None,
    cancel_event: threading.Event | None,
    hints: list[Hint],
) -> ColorizeOutcome:
    image = upload.image
    folder = ctx.outputs.new_request()
    stem = safe_stem(Path(upload.name).stem)
    input_png = ctx.outputs.save_png(image, folder / f"{stem}.png")
    photo = prepare_image(image)  # decoded and its full-resolution L computed once, for every model
    results = []
    for entry in entries:
        if cancel_event is not None and cancel_event.is_set():
            return ColorizeOutcome(input_png, image.size, results, cancelled=True, hints=len(hints))
        started = time.perf_counter()
        report = None if progress is None else (lambda step, total, name=entry.name: progress(name, step, total))
        try:
            colourings = entry.colorize_samples(
                photo,
                working_size=working_size,
                saturation=saturation,
                options=options,
                progress_callback=report,
                cancel_event=cancel_event,
                hints=hints if entry.takes_hints else None,
            )
        # Whatever one model does wrong (refuses the input, runs out of memory), the other models still answer.
        except Exception as error:
            if cancel_event is not None and cancel_event.is_set():  # the sampler stopped because Cancel was pressed
                return ColorizeOutcome(input_png, image.size, results, cancelled=True, hints=len(hints))
            logger.exception("%s failed on %s", entry.name, upload.name)
            reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            results.append(ModelResult(entry.name, None, time.perf_counter() - started, reason))
            continue
        note = hint_note(entry.takes_hints, len(hints))
        seconds = time.perf_counter() - started
        base = f"{stem}_{safe_stem(entry.name)}"
        paths = tuple(
            ctx.outputs.save_png(colored, folder / (f"{base}.png" if k == 0 else f"{base}_{k + 1}.png"))
            for k, colored in enumerate(colourings)
        )
        results.append(
            ModelResult(
                entry.name,
                paths[0],
                seconds,
                samples=paths,
                working_size=entry.working_size_for(working_size),
                hinted=bool(hints) and entry.takes_hints,
                hint_note=note,
            )
        )
    return ColorizeOutcome(input_png, image.size, results, hints=len(hints))


# --- Arena ------------------------------------------------------------------------------------------------------


def _arena(ctx: AppContext) -> Arena:
    if ctx.arena is None:
        raise ArenaError(ctx.arena_problem)
    return ctx.arena


def arena_round(ctx: AppContext, upload: str | Path | None, *, voter: str, consent: bool = False) -> ArenaRound:
    """A new anonymous round: the upload (else a random example) colorized by the next balanced pair."""
    return _arena(ctx).new_round(upload, voter=voter, consent=bool(consent))


def _rating(value: object) -> int | None:
    # Radio buttons and API clients send 4, "4" or nothing; the store validates the range.
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value  # type: ignore[return-value]


def arena_vote(
    ctx: AppContext, token: str | None, choice: str, *, voter: str, rating_a: object = None, rating_b: object = None
) -> Vote:
    """Store a vote for the round behind `token` (the client never names a model) and return it for the reveal."""
    if not token:
        raise ArenaError("There is no pair to vote on yet; press 'Next pair' first.")
    return _arena(ctx).vote(token, choice, voter=voter, rating_a=_rating(rating_a), rating_b=_rating(rating_b))


def reveal_markdown(vote: Vote) -> str:
    verdict = {"a": "A is better", "b": "B is better", "tie": "a tie", "both_bad": "both bad"}[vote.winner]
    return f"Thanks! You voted **{verdict}**. A was **{vote.model_a}**, B was **{vote.model_b}**."


# --- Leaderboard ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardView:
    table: pd.DataFrame  # formatted for display
    win_rates: pd.DataFrame  # formatted for display, row model vs column model
    figure: Figure
    summary: str
    raw: pd.DataFrame  # judge.leaderboard.leaderboard_table's numbers


def _interval(low: float, high: float, digits: int) -> str:
    return "" if math.isnan(low) or math.isnan(high) else f"{low:.{digits}f} – {high:.{digits}f}"


BOARD_COLUMNS = [
    "rank", "model", "score", "95% CI", "votes", "wins / losses / ties / both bad", "win rate", "MOS (1-5)",
    "MOS 95% CI", "ratings",
]  # fmt: skip


def format_leaderboard(raw: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for rank, row in enumerate(raw.itertuples(index=False), start=1):
        rows.append(
            {
                "rank": rank,
                "model": f"{row.model} (provisional)" if row.provisional else row.model,
                "score": round(row.score),
                "95% CI": _interval(row.ci_low, row.ci_high, 0),
                "votes": row.votes,
                "wins / losses / ties / both bad": f"{row.wins} / {row.losses} / {row.ties} / {row.both_bad}",
                "win rate": "" if math.isnan(row.win_rate) else f"{row.win_rate:.0%}",
                "MOS (1-5)": "" if math.isnan(row.mos) else f"{row.mos:.2f}",
                "MOS 95% CI": _interval(row.mos_ci_low, row.mos_ci_high, 2),
                "ratings": row.ratings,
            }
        )
    return pd.DataFrame(rows, columns=BOARD_COLUMNS)


def format_win_rates(matrix: pd.DataFrame) -> pd.DataFrame:
    shown = matrix.map(lambda rate: "–" if math.isnan(rate) else f"{rate:.0%}")
    shown.insert(0, "model ↓ vs →", matrix.index.tolist())
    return shown.reset_index(drop=True)


def leaderboard_view(ctx: AppContext) -> LeaderboardView:
    """Bradley-Terry table, win rates, plot and summary over the served models; recomputed only after new votes."""
    votes = ctx.store.votes()
    models = ctx.pool.names()
    key = (votes[-1].vote_id if votes else 0, tuple(models), ctx.min_votes)
    with ctx._board_lock:
        if ctx._board_cache is not None and ctx._board_cache[0] == key:
            return ctx._board_cache[1]
        votes, flags = shadow_exclude(votes, models)  # flagged voters stay in the database and the export
        raw = leaderboard_table(votes, models, min_votes=ctx.min_votes)
        counted = int(raw["votes"].sum() // 2)
        provisional = raw.loc[raw["provisional"], "model"].tolist()
        summary = f"**{counted} vote{'s' if counted != 1 else ''}** between the {len(models)} served models."
        if flags:
            summary += (
                f" Left out: {excluded_summary(flags)} whose votes the ranking of everyone else cannot explain "
                "(a statistical outlier test); they are kept in the export with the reason."
            )
        if provisional:
            summary += (
                f" Models with fewer than {ctx.min_votes} votes are marked *provisional*: "
                "their scores can still move a lot."
            )
        view = LeaderboardView(
            table=format_leaderboard(raw),
            win_rates=format_win_rates(win_rate_matrix(votes, models)),
            figure=leaderboard_plot(raw),
            summary=summary,
            raw=raw,
        )
        ctx._board_cache = (key, view)
        return view


# --- Models tab -------------------------------------------------------------------------------------------------

_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class ModelCardView:
    name: str
    markdown: str  # facts list + the model card, with local image links removed
    sample_image: Path | None  # the card's first local image (its sample grid)
    # The same card in order: markdown text, and in place of each local image link the image file itself (a markdown
    # block cannot serve a relative link, which left an empty "Samples" heading), so the UI shows it where it belongs.
    parts: tuple[str | Path, ...] = ()


def _demote_headings(markdown: str, levels: int = 2) -> str:
    """'# Title' -> '### Title' outside code fences, so a card's headings sit below the model's name."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        fenced ^= line.lstrip().startswith("```")
        lines.append("#" * levels + line if not fenced and re.match(r"#{1,4} ", line) else line)
    return "\n".join(lines)


def _local_image(folder: Path | None, link: str) -> Path | None:
    """The file a card's relative image link names, only if it exists inside the model's own folder."""
    if folder is None or "://" in link:
        return None
    candidate = folder / link
    if candidate.is_file() and candidate.resolve().is_relative_to(folder.resolve()):
        return candidate
    return None


def _card_parts(card: str, folder: Path | None) -> tuple[str | Path, ...]:
    """Split a card at its image links: text pieces, and the local images in their place (other links dropped)."""
    parts: list[str | Path] = []
    position = 0
    for match in _IMAGE_LINK.finditer(card):
        parts.append(card[position : match.start()])
        image = _local_image(folder, match.group(1))
        if image is not None:
            parts.append(image)
        position = match.end()
    parts.append(card[position:])
    return tuple(part for part in parts if not isinstance(part, str) or part.strip())


def model_cards(ctx: AppContext) -> list[ModelCardView]:
    """One card per served model: architecture, size, source, then its model card (training data, metrics)."""
    cards = []
    for entry in ctx.pool.entries.values():
        facts = [f"- architecture: `{entry.architecture}`"]
        if entry.parameters is not None:
            facts.append(f"- parameters: {entry.parameters:,} ({entry.parameters / 1e6:.2f} M)")
        source = f"untrained `{entry.source}` variant" if entry.untrained else f"`{entry.source}`"
        facts.append(f"- source: {source}" + (f" at revision `{entry.revision}`" if entry.revision else ""))
        if entry.takes_hints:
            facts.append("- follows colour points: click the photo in Colorize to place them")
        if entry.precision:
            facts.append(f"- precision: {entry.precision.removeprefix(entry.name + ': ')}")
        if entry.extra_options:
            facts.append("- extra options: " + ", ".join(f"`{k}`" for k in entry.extra_options))
        card = _demote_headings(entry.colorizer.card or "_This model has no model card._")
        parts = _card_parts("\n".join(facts) + "\n\n" + card, entry.folder)
        images = [part for part in parts if isinstance(part, Path)]
        markdown = "\n".join(facts) + "\n\n" + _IMAGE_LINK.sub("", card)
        cards.append(ModelCardView(entry.name, markdown, images[0] if images else None, parts))
    return cards
