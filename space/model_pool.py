"""The colorizers the app serves, loaded once at start-up from server-side configuration only.

    pool = ModelPool.from_env()          # COLORLAB_MODELS, else space/models.yaml
    colorizer = pool.get("pix2pix")      # names come from the UI; anything not configured is refused

`COLORLAB_MODELS` is either

- a path to a YAML or JSON file shaped like `space/models.yaml`::

      models:
        - name: pix2pix              # shown in the UI and stored with votes
          source: weights/pix2pix    # a local model folder ...
        - name: community
          source: user/repo          # ... or a Hugging Face Hub model id
          revision: v1               # optional Hub branch, tag or commit

- or an inline comma-separated list of `[name=]source[@revision]`, e.g.
  `pix2pix=weights/pix2pix,community=user/repo@v1` (the name defaults to the folder or repo name).

Relative folders are resolved against the app root (the folder holding app.py), so the same config
works from any working directory and inside the Space bundle. A source is a local folder when it
starts with `.`, `/` or `~`, exists, or its first path part is a folder of the app root (`weights/...`);
otherwise a `user/repo` source is fetched from the Hub.

A model that fails to load is listed in `pool.failures` with the reason and the app goes on; if none
loads, clearly labelled untrained tiny networks stand in so the app still opens (`pool.fallback_used`).
The browser can only ever pick among `pool.names()`: it never names a path or a repo id.

Every entry holds a `models.colorizer.Colorizer` and asks it only what that contract offers. The UI's sampling
form is one for all models, so an entry forwards only the options its colorizer declares in `extra_options` (a
diffusion colorizer's `num_samples`, `seed`, ...; a network declares none), and the colorizer fills in its own
defaults. Colorizers that draw samples (`draws_samples`) report step progress, stop on a cancel event, and
sample at their `native_working_size`, the size they were trained at, whatever working size the UI asks for.
A request hands every entry the same `PreparedImage`, so the photo is decoded and its full-resolution L
computed once, not once per model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from PIL import Image

from models.colorizer import Colorizer, PreparedImage, ProgressCallback
from models.hints import Hint
from models.hub_files import ModelSpec  # re-exported: the app and deploy know it from here
from models.imageio import ImageSource
from models.pipeline import NetworkColorizer

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).resolve().parent / "models.yaml"
# Untrained stand-ins, one per family the bundled defaults cover.
FALLBACK_VARIANTS = ("pix2pix_tiny", "unet_tiny", "autoencoder_tiny")
UNTRAINED_SUFFIX = " (untrained)"
PRECISION_ENV = "COLORLAB_PRECISION"  # the precision path of every served network (models.precision)
_NAME_PATTERN = re.compile(r"^[\w][\w .()+-]{0,63}$")
_SPEC_KEYS = {"name", "source", "revision"}
logger = logging.getLogger(__name__)


class ModelChoiceError(ValueError):
    """A model name the pool does not serve (the message lists the ones it does)."""


@dataclass(frozen=True)
class LoadFailure:
    """A configured model that could not be served, with the reason in one sentence."""

    spec: ModelSpec
    reason: str


@dataclass
class PoolEntry:
    """A loaded colorizer plus what the Models tab shows about it."""

    name: str
    colorizer: Colorizer
    source: str
    revision: str | None = None
    untrained: bool = False
    load_seconds: float = 0.0
    folder: Path | None = None  # local folder the weights came from (Hub cache for Hub models)
    precision: str = ""  # which precision path the network runs and why (models.precision), for the Models tab

    @property
    def extra_options(self) -> dict[str, Any]:
        """Options beyond working size and saturation this colorizer accepts, with its defaults."""
        return dict(self.colorizer.extra_options)

    @property
    def architecture(self) -> str:
        return self.colorizer.architecture

    @property
    def parameters(self) -> int | None:
        return self.colorizer.num_parameters()

    @property
    def draws_samples(self) -> bool:
        """Whether this colorizer samples several plausible colourings per photo (a diffusion colorizer)."""
        return self.colorizer.draws_samples

    @property
    def takes_hints(self) -> bool:
        """Whether this colorizer follows colour points (a hint model, e.g. weights/colour_hints)."""
        return self.colorizer.takes_hints

    def working_size_for(self, requested: int | None) -> int:
        """The working size this model runs at: the requested one, or its native one when the request is "auto"
        (0 or None). Samplers always sample at the size they were trained at."""
        if self.draws_samples or not requested:
            return self.colorizer.native_working_size
        return int(requested)

    def _declared(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The request's options this colorizer declares (the others are meant for other models)."""
        declared = self.colorizer.extra_options
        return {key: value for key, value in (options or {}).items() if key in declared}

    def colorize(
        self,
        photo: ImageSource | PreparedImage,
        *,
        working_size: int | None,
        saturation: float,
        options: Mapping[str, Any] | None = None,
    ) -> Image.Image:
        """One colouring with this model (a sampler's first)."""
        return self.colorizer.colorize(
            photo, working_size=self.working_size_for(working_size), saturation=saturation, **self._declared(options)
        )

    def colorize_samples(
        self,
        photo: ImageSource | PreparedImage,
        *,
        working_size: int | None,
        saturation: float,
        options: Mapping[str, Any] | None = None,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        hints: Sequence[Hint] | None = None,
    ) -> list[Image.Image]:
        """Every colouring this model draws: `num_samples` for a sampler (its defaults filling what `options`
        leaves out), one for the others. `hints` only for a colorizer that `takes_hints` (the others refuse them)."""
        return self.colorizer.colorize_samples(
            photo,
            working_size=self.working_size_for(working_size),
            saturation=saturation,
            progress_callback=progress_callback,
            cancel_event=cancel_event,
            hints=hints,
            **self._declared(options),
        )


# --- configuration ---------------------------------------------------------------------------------------------------


def _spec_from_mapping(item: object, where: str) -> ModelSpec:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: each model must be a mapping with 'name' and 'source', got {item!r}.")
    unknown = set(item) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; a model takes only name, source and revision.")
    source = item.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: every model needs a 'source' (a model folder or a Hub id like user/repo).")
    name = item.get("name") or _default_name(source)
    revision = item.get("revision")
    return ModelSpec(name=str(name).strip(), source=source.strip(), revision=str(revision) if revision else None)


def _default_name(source: str) -> str:
    return Path(source.rstrip("/")).name or source


def parse_inline(value: str) -> list[ModelSpec]:
    """`[name=]source[@revision]` entries separated by commas."""
    specs = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, _, source = entry.rpartition("=")
        source, _, revision = source.partition("@")
        specs.append(_spec_from_mapping({"name": name or None, "source": source, "revision": revision or None}, entry))
    return specs


def read_config_file(path: Path) -> list[ModelSpec]:
    """Models listed in a YAML or JSON file (`models:` list, or a bare list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"Cannot read the model list {path} ({error.strerror}); fix COLORLAB_MODELS.") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"{path} is not valid {path.suffix.lstrip('.').upper()} ({error}); fix its syntax."
        ) from error
    items = data.get("models") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ValueError(f"{path} must hold a 'models:' list of {{name, source, revision}} entries.")
    return [_spec_from_mapping(item, f"{path} entry {index + 1}") for index, item in enumerate(items)]


def configured_specs(env: Mapping[str, str] | None = None) -> tuple[list[ModelSpec], str]:
    """The configured models and a phrase saying where they came from."""
    env = os.environ if env is None else env
    value = env.get("COLORLAB_MODELS", "").strip()
    if not value:
        return read_config_file(DEFAULT_CONFIG), str(DEFAULT_CONFIG.relative_to(APP_ROOT))
    if value.endswith((".yaml", ".yml", ".json")):
        return read_config_file(Path(value).expanduser()), value
    return parse_inline(value), "COLORLAB_MODELS"


def check_specs(specs: Sequence[ModelSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if not _NAME_PATTERN.match(spec.name):
            raise ValueError(
                f"Model name {spec.name!r} is not usable; use up to 64 letters, digits, spaces and . ( ) + - _."
            )
        if spec.name in seen:
            raise ValueError(f"Two models are named {spec.name!r}; give each model a distinct name.")
        seen.add(spec.name)


def resolve_source(source: str, root: Path = APP_ROOT) -> str | Path:
    """A local folder (as an absolute Path) or a Hub repo id (as a str); see the module docstring."""
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = root / path
    first = source.split("/", 1)[0]
    parts = source.split("/")
    looks_like_hub_id = len(parts) == 2 and all(parts) and not source.startswith((".", "/", "~"))
    if path.exists() or not looks_like_hub_id or (root / first).is_dir():
        return path
    return source


# --- loading -----------------------------------------------------------------------------------------------------


def _strip_front_matter(card: str) -> str:
    if card.startswith("---"):
        end = card.find("\n---", 3)
        if end != -1:
            return card[end + 4 :].lstrip("\n")
    return card


def load_entry(spec: ModelSpec, *, root: Path = APP_ROOT, device: str = "cpu") -> PoolEntry:
    """Load one configured model; raises ValueError with one sentence when it cannot be served.

    Its network runs on the precision path COLORLAB_PRECISION asks for (auto, fp32, bf16, int8; default auto: the
    choice `python -m models.precision` measured on this machine, else fp32)."""
    from models.hub import load_colorizer, resolve_model_folder  # heavy imports only when loading
    from models.precision import apply_precision
    from models.precision_options import check_precision

    resolved = resolve_source(spec.source, root)
    if isinstance(resolved, Path) and not resolved.exists():
        raise ValueError(
            f"{spec.source} does not exist yet; train or copy the model there, or remove it from the model list."
        )
    started = time.perf_counter()
    folder = resolved
    try:
        folder = resolve_model_folder(resolved, revision=spec.revision)
        colorizer = load_colorizer(folder, revision=spec.revision, device=device, name=spec.name)
        asked = check_precision(os.environ.get(PRECISION_ENV, "auto"), what=f"the {PRECISION_ENV} setting")
        precision = apply_precision(colorizer, asked)
    except ValueError as error:
        # The reason is shown in the UI: name the folder as the operator wrote it, not the server's absolute path.
        raise ValueError(str(error).replace(str(folder), spec.source).replace(str(resolved), spec.source)) from error
    colorizer.card = _strip_front_matter(colorizer.card)
    return PoolEntry(
        name=spec.name,
        colorizer=colorizer,
        source=spec.source,
        revision=spec.revision,
        load_seconds=time.perf_counter() - started,
        folder=folder,
        precision=precision,
    )


def untrained_fallback(variants: Sequence[str] = FALLBACK_VARIANTS) -> list[PoolEntry]:
    """Tiny networks with random weights (seeded, so they are the same every start), labelled as untrained."""
    # only the fallback builds networks: the registry imports every architecture
    from models.model_card import render_model_card
    from models.registry import create_model

    entries = []
    generator_state = torch.random.get_rng_state()
    try:
        for seed, variant in enumerate(variants):
            torch.manual_seed(seed)
            model = create_model(variant)
            model.card_data["notes"] = "Random weights: a stand-in so the app opens before any model is trained."
            name = f"{variant}{UNTRAINED_SUFFIX}"
            card = _strip_front_matter(str(render_model_card(model)))
            colorizer = NetworkColorizer(model, name=name, card=card)
            entries.append(PoolEntry(name, colorizer, source=variant, untrained=True))
    finally:
        torch.random.set_rng_state(generator_state)  # leave the caller's random stream untouched
    return entries


@dataclass
class ModelPool:
    """Loaded colorizers by name, plus what failed and why."""

    entries: dict[str, PoolEntry] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    config_error: str | None = None
    config_origin: str = ""
    fallback_used: bool = False

    @classmethod
    def load(
        cls,
        specs: Sequence[ModelSpec],
        *,
        origin: str = "",
        root: Path = APP_ROOT,
        fallback: bool = True,
    ) -> ModelPool:
        pool = cls(config_origin=origin)
        try:
            check_specs(specs)
        except ValueError as error:
            pool.config_error, specs = str(error), []
        for spec in specs:
            try:
                entry = load_entry(spec, root=root)
            # Any failure (bad file, unknown architecture, torch error) must only cost this one model.
            except Exception as error:
                logger.warning("Model %s (%s) was not loaded: %s", spec.name, spec.source, error)
                pool.failures.append(LoadFailure(spec, str(error) or type(error).__name__))
                continue
            pool.entries[entry.name] = entry
        if not pool.entries and fallback:
            pool.entries = {entry.name: entry for entry in untrained_fallback()}
            pool.fallback_used = True
        return pool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, root: Path = APP_ROOT) -> ModelPool:
        """The pool `COLORLAB_MODELS` (or space/models.yaml) describes; a broken config is reported, not raised."""
        try:
            specs, origin = configured_specs(env)
        except ValueError as error:
            pool = cls.load([], root=root)
            pool.config_error = str(error)
            return pool
        return cls.load(specs, origin=origin, root=root)

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> PoolEntry:
        if not isinstance(name, str) or name not in self.entries:
            served = ", ".join(self.entries) or "none"
            raise ModelChoiceError(
                f"{name!r} is not one of the models this app serves ({served}); pick from the list."
            )
        return self.entries[name]

    def select(self, names: Sequence[str] | None) -> list[PoolEntry]:
        """The entries for UI-chosen names, in the pool's order; refuses unknown names and an empty choice."""
        if not names:
            raise ModelChoiceError("Choose at least one model.")
        chosen = {self.get(name).name for name in names}
        return [entry for name, entry in self.entries.items() if name in chosen]

    def notice_markdown(self) -> str:
        """What went wrong at start-up, for the banner at the top of the app ('' when all is well)."""
        lines = []
        if self.config_error:
            lines.append(f"**The model list could not be read:** {self.config_error}")
        if self.fallback_used:
            lines.append(
                "**No trained colorizer could be loaded, so the models below are untrained tiny networks "
                "(their colours are random).** Train models into `weights/` or set `COLORLAB_MODELS`."
            )
        if self.failures:
            lines.append("Models not loaded:")
            lines += [f"- **{f.spec.name}** (`{f.spec.source}`): {f.reason}" for f in self.failures]
        return "\n".join(lines)
