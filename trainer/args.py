"""Command line of `trainer/train.py`: YAML presets (`--config NAME`) and flags -> a typed config (trainer.config).

    python trainer/train.py --help                 # every flag, grouped by family, with its default
    python trainer/train.py --config tiny --help   # the same, with the preset's values as the defaults
    config = parse_args(["--config", "tiny", "--dataset", "photos/"])   # a GANTrainingConfig

The parser is generated from the config dataclasses (each field's type, default, help text and group), so a flag is
declared once. Flags follow the diffusers example trainers wherever the meaning is the same (`--two_words`;
`--two-words` is accepted too). A preset sets defaults; anything given on the command line wins. `--model` picks
the family (`controlnet`: diffusion, anything else: pix2pix and the baselines); a flag or preset key of the other
family, a GAN flag typed for a run without a discriminator, or `--hint_loss` for a run without `--hints` would
silently do nothing, so it is refused. Argument problems,
a preset's included (argparse checks `choices` and types only for values typed on the command line), are reported
before any model or data is loaded, in one sentence that names the valid values.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from models.flags import FlagParser
from trainer.config import (
    CONTROLNET,
    FAMILIES,
    TOP_LEVEL,
    TRACKER_PACKAGES,
    AnyTrainingConfig,
    ControlNetTrainingConfig,
    GANTrainingConfig,
    TrainingConfig,
    family_of,
    loggable,
)

__all__ = ["CONFIG_DIR", "TRACKER_PACKAGES", "loggable", "parse_args"]

CONFIG_DIR = Path(__file__).parent / "configs"
DESCRIPTION = (
    "Train a ColorLab colorizer: pix2pix cGAN, a regression baseline or the ControlNet diffusion colorizer. The "
    "shared flags apply to every model; the generator flags to pix2pix models and the baselines, the GAN flags to "
    "them when a discriminator trains, the diffusion flags to --model controlnet; a flag of another family is "
    "refused."
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" on every flag, with unset / off / lists / JSON written as a user would type them."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is argparse.SUPPRESS or not action.option_strings or action.dest == "help":
            return text
        default = action.default
        if default is None:
            shown = "unset"
        elif isinstance(default, bool):
            shown = "on" if default else "off"
        elif isinstance(default, list | tuple):
            shown = " ".join(str(value) for value in default)
        elif isinstance(default, dict):
            shown = json.dumps(default)
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _field_type(cls: type, field: dataclasses.Field) -> Any:
    return typing.get_type_hints(cls)[field.name]


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int; `list[float]` -> list; anything else unchanged."""
    if isinstance(annotation, types.UnionType):
        (annotation,) = [part for part in typing.get_args(annotation) if part is not type(None)]
    return typing.get_origin(annotation) or annotation


def _add_flag(group: argparse._ArgumentGroup, cls: type, field: dataclasses.Field, *, suppress: bool) -> None:
    meta = field.metadata
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    kwargs: dict[str, Any] = {"help": meta["help"], "default": argparse.SUPPRESS if suppress else default}
    annotation = _field_type(cls, field)
    base = _base_type(annotation)
    if base is bool:
        kwargs["action"] = "store_true"
    else:
        if meta["parse"] is not None:
            kwargs["type"] = meta["parse"]
        elif base is list:
            kwargs["type"] = typing.get_args(annotation)[0]
        elif base in (int, float):
            kwargs["type"] = base
        for key in ("choices", "nargs", "metavar"):
            if meta[key] is not None:
                kwargs[key] = list(meta[key]) if key == "choices" else meta[key]
    group.add_argument(f"--{field.name}", **kwargs)


def _build_parser(*, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """Every family's flags, generated from trainer.config: the shared groups, then each family's own groups.

    `suppress_defaults` leaves unset flags out of the result (which flags were typed on the command line).
    """
    # Flags are spelled with underscores (as in diffusers); FlagParser accepts `--two-words` for each as well.
    parser = FlagParser(description=DESCRIPTION, formatter_class=HelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for cls in (TrainingConfig, *FAMILIES):
        for field in cls.own_fields():
            title = field.metadata["group"]
            if title == TOP_LEVEL:
                group = parser
            else:
                if title not in groups:
                    groups[title] = parser.add_argument_group(title)
                group = groups[title]
            _add_flag(group, cls, field, suppress=suppress_defaults)
    return parser


def _resolve_config(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    preset = CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if preset.is_file():
        return preset
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise SystemExit(f"error: --config {name} is neither a file nor a preset; presets: {known}")


def parse_args(argv: list[str] | None = None) -> AnyTrainingConfig:
    """Presets and flags -> the typed config of `--model`'s family; a problem exits (status 2) with one sentence."""
    parser = _build_parser()
    # --config first, with a parser that knows nothing else: `--config tiny --help` then shows the preset's values.
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--config", default=None)
    config_name = config_parser.parse_known_args(argv)[0].config
    preset: dict[str, Any] = {}
    if config_name:
        preset = yaml.safe_load(_resolve_config(config_name).read_text()) or {}
        if not isinstance(preset, dict):
            parser.error(f"{config_name} is not a YAML mapping of option: value lines")
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(preset) - known)
        if unknown:
            parser.error(f"{config_name} sets unknown options {unknown}")
        parser.set_defaults(**preset)
    namespace = parser.parse_args(argv)
    _check_choices(parser, namespace, preset, config_name)
    family = family_of(namespace.model)
    _check_preset_types(parser, family, namespace, preset, config_name)
    typed = set(vars(_build_parser(suppress_defaults=True).parse_known_args(argv)[0]))
    _check_family(parser, family, namespace, preset, config_name, typed)
    config = family(**{field.name: getattr(namespace, field.name) for field in dataclasses.fields(family)})
    if isinstance(config, GANTrainingConfig):
        _check_discriminator_flags(parser, config, typed)
        _check_hint_loss(parser, config, preset, config_name, typed)
    _validate(parser, config)
    return config


def _suggestion(value: object, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(value), choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_choices(
    parser: argparse.ArgumentParser, args: argparse.Namespace, preset: dict[str, Any], config_name: str | None
) -> None:
    """Refuse a preset value outside a flag's choices: argparse checks only what was typed on the command line."""
    for action in parser._actions:
        if not action.choices or action.dest not in preset:
            continue
        value = getattr(args, action.dest)
        if value in action.choices:
            continue
        choices = [str(choice) for choice in action.choices]
        hint = _suggestion(value, choices)
        if isinstance(value, bool):  # YAML reads unquoted no/yes/off/on as booleans
            hint = f" (YAML reads an unquoted word like no as {value}: quote it, e.g. '{choices[0]}')"
        parser.error(f"{config_name} sets {action.dest}: {value}, which is not one of {', '.join(choices)}{hint}")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a preset's YAML value fits a field's type (an int fits a float; a bool fits only a bool)."""
    if isinstance(annotation, types.UnionType):
        return any(_matches(value, part) for part in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    base = typing.get_origin(annotation) or annotation
    if base is bool:
        return isinstance(value, bool)
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_matches(part, item) for part in value)
    if base is dict:
        return isinstance(value, dict)
    return isinstance(value, base)


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", dict: "a mapping"}


def _check_preset_types(
    parser: argparse.ArgumentParser,
    family: type[TrainingConfig],
    args: argparse.Namespace,
    preset: dict[str, Any],
    config_name: str | None,
) -> None:
    """Refuse a preset value of the wrong type: argparse converts a preset's text (`learning_rate: 1e-4`, which YAML
    reads as text) with the flag's type, but passes numbers, lists and booleans through unchecked."""
    hints = typing.get_type_hints(family)
    for field in dataclasses.fields(family):
        value = getattr(args, field.name)
        if field.name not in preset or _matches(value, hints[field.name]):
            continue
        base = _base_type(hints[field.name])
        wanted = _TYPE_NAMES.get(base, "a list of numbers" if base is list else str(base))
        if field.metadata["nargs"]:
            wanted = f"a list of {field.metadata['nargs']} numbers"
        parser.error(f"{config_name} sets {field.name}: {value!r}, which is not {wanted}")


def _names(names: list[str], prefix: str) -> tuple[str, str]:
    """("--a, --b", "apply") / ("--a", "applies") for the refusal sentences."""
    return ", ".join(prefix + name for name in names), "applies" if len(names) == 1 else "apply"


def _check_family(
    parser: argparse.ArgumentParser,
    family: type[TrainingConfig],
    args: argparse.Namespace,
    preset: dict[str, Any],
    config_name: str | None,
    typed: set[str],
) -> None:
    """Refuse flags and preset keys of another family than --model's: they would silently do nothing."""
    for other in FAMILIES:
        if other is family:
            continue
        foreign = [field.name for field in other.own_fields()]
        flags = [name for name in foreign if name in typed]
        if flags:
            listed, verb = _names(flags, "--")
            pronoun = "it" if len(flags) == 1 else "them"
            if other is ControlNetTrainingConfig:
                fix = f"remove {pronoun} or pass --model controlnet"
            else:
                fix = f"remove {pronoun}, or pick a registry --model (--model controlnet trains a diffusion colorizer)"
            parser.error(f"{listed} {verb} only to {other.FAMILY}; {fix}")
        keys = [name for name in foreign if name in preset]
        if keys:
            listed, verb = _names(keys, "")
            use = (
                f"a {CONTROLNET} preset such as controlnet_tiny"
                if family is ControlNetTrainingConfig
                else ("a preset of that family such as tiny")
            )
            parser.error(
                f"{config_name} sets {listed}, which {verb} only to {other.FAMILY}, not to --model {args.model}; "
                f"use {use}, or remove them from the preset"
            )


def _check_discriminator_flags(parser: argparse.ArgumentParser, config: GANTrainingConfig, typed: set[str]) -> None:
    """Refuse GAN flags typed for a run that trains no discriminator (a preset's are a recipe reused, and pass)."""
    if config.trains_discriminator:
        return
    exempt = set(config.SWITCHES) if config.lambda_gan <= 0 else {"discriminator"}
    flags = [
        field.name
        for field in GANTrainingConfig.discriminator_fields()
        if field.name in typed and field.name not in exempt
    ]
    if flags:
        listed, verb = _names(flags, "--")
        reason, fix = config.no_discriminator_reason()
        pronoun = "it" if len(flags) == 1 else "them"
        parser.error(
            f"{listed} {verb} only to GAN training, and this run trains no discriminator ({reason}); remove {pronoun} "
            f"or {fix}"
        )


def _check_hint_loss(
    parser: argparse.ArgumentParser,
    config: GANTrainingConfig,
    preset: dict[str, Any],
    config_name: str | None,
    typed: set[str],
) -> None:
    """Refuse --hint_loss (typed or a preset key) for a run that trains no hint model: it chooses what a hint model's
    loss sees, and would silently do nothing. Its default is not a choice, so it passes."""
    if config.hints:
        return
    if "hint_loss" in typed:
        parser.error(
            f"--hint_loss {config.hint_loss} applies only to a hint model, and this run trains none (no --hints); "
            "pass --hints to train one, or remove --hint_loss"
        )
    if "hint_loss" in preset:
        parser.error(
            f"{config_name} sets hint_loss, which applies only to a hint model, and this run trains none (neither "
            "hints: true nor --hints); pass --hints or add hints: true to the preset, or remove hint_loss from it"
        )


def _check_model(parser: argparse.ArgumentParser, args: TrainingConfig) -> None:
    if args.model == CONTROLNET:
        return
    from models.registry import list_models  # torch: only once the arguments are otherwise fine

    known = list_models()
    if args.model not in known:
        parser.error(
            f"--model {args.model} is not a registered model{_suggestion(args.model, known)}; choose one of "
            f"{', '.join(known)} or controlnet"
        )


def _check_tracker(parser: argparse.ArgumentParser, args: TrainingConfig) -> None:
    package = TRACKER_PACKAGES.get(args.report_to)
    if package and importlib.util.find_spec(package) is None:
        parser.error(
            f"--report_to {args.report_to} needs the {package} package, which is not installed: pip install "
            f"{package} (or pass --report_to none)"
        )


def _validate(parser: argparse.ArgumentParser, args: AnyTrainingConfig) -> None:
    if not args.dataset:
        parser.error("--dataset is required (a Hub dataset id, an image folder, or a save_to_disk folder)")
    if args.resolution < 16:
        parser.error(f"--resolution must be at least 16, got {args.resolution}")
    if args.train_batch_size < 1 or args.gradient_accumulation_steps < 1:
        parser.error("--train_batch_size and --gradient_accumulation_steps must be >= 1")
    if args.logging_steps < 1:
        parser.error(f"--logging_steps must be at least 1, got {args.logging_steps}")
    if args.max_resolution is not None and args.max_resolution < args.resolution:
        parser.error(f"--max_resolution ({args.max_resolution}) must be at least --resolution ({args.resolution})")
    if isinstance(args, GANTrainingConfig) and not 0 <= args.class_rebalancing <= 1:
        parser.error(f"--class_rebalancing must be between 0 and 1, got {args.class_rebalancing}")
    if not 0 < args.crop_scale[0] <= args.crop_scale[1] <= 1:
        parser.error(f"--crop_scale must satisfy 0 < MIN <= MAX <= 1, got {args.crop_scale}")
    if not 0 < args.composite_probability <= 1:
        parser.error(f"--composite_probability must be above 0 and at most 1, got {args.composite_probability}")
    if args.composite_cutouts:
        from corpus.cutout_set import CutoutSetError, read_cutout_set  # standard library only

        try:
            read_cutout_set(args.composite_cutouts)
        except CutoutSetError as error:
            parser.error(str(error).rstrip("."))
    if isinstance(args, ControlNetTrainingConfig) and not 0 <= args.proportion_empty_prompts <= 1:
        parser.error("--proportion_empty_prompts must be between 0 and 1")
    _check_tracker(parser, args)
    if args.push_to_hub:
        from trainer.push import check_hub_model_id  # huggingface_hub: only with --push_to_hub

        try:
            check_hub_model_id(args.hub_model_id)
        except ValueError as error:
            parser.error(str(error))
    if args.hub_token is None:
        args.hub_token = os.environ.get("HF_TOKEN")
    if isinstance(args, GANTrainingConfig):
        _check_losses(parser, args)
    _check_model(parser, args)


def _check_losses(parser: argparse.ArgumentParser, args: GANTrainingConfig) -> None:
    if "perceptual" in args.losses and not args.perceptual_weights:
        parser.error(
            "the perceptual loss needs ImageNet VGG16 weights: pass --perceptual_weights vgg16.pth (none can be "
            "downloaded here, and random VGG features would not be a perceptual loss)"
        )
    if args.perceptual_weights and not Path(args.perceptual_weights).is_file():
        parser.error(f"--perceptual_weights {args.perceptual_weights} does not exist")
    from trainer.losses import parse_loss_spec  # torch: only once the cheap checks passed

    try:
        parse_loss_spec(args.losses)
    except ValueError as error:
        parser.error(str(error).rstrip("."))
