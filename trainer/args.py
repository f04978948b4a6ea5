"""Command-line arguments of `trainer/train.py`, with YAML presets (`--config trainer/configs/NAME.yaml`).

    python trainer/train.py --help                 # every flag, grouped, with its default
    python trainer/train.py --config tiny --help   # the same, with the preset's values as the defaults

Flags follow the diffusers example trainers wherever the meaning is the same (`--two_words`; `--two-words` is
accepted too). A preset sets defaults; anything given on the command line wins. Argument problems, a preset's
included (argparse checks `choices` only for values typed on the command line), are reported before any model
or data is loaded, in one sentence that names the valid values.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import yaml

from models.flags import FlagParser
from models.metric_table import EARLY_STOPPING_METRICS
from trainer.schedule import SCHEDULER_NAMES

CONFIG_DIR = Path(__file__).parent / "configs"
# --report_to value -> the package its tracker needs (accelerate's "all" takes whichever are installed).
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}
REPORT_TO = (*TRACKER_PACKAGES, "all", "none")


def _json_object(text: str) -> dict[str, Any]:
    """argparse type of --model_overrides: a JSON object, refused in one sentence otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not JSON ({error.msg}); write e.g. '{{\"depth\": 7}}'"
        ) from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"'{text}' is not a JSON object; write e.g. '{{\"depth\": 7}}'")
    return value


def _model_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add("--model", default="pix2pix_unet256", help="Registry name (see models.registry.list_models) or 'controlnet'.")
    add(
        "--model_overrides",
        type=_json_object,
        default={},
        help="JSON object of constructor arguments for --model, e.g. '{\"depth\": 7}'.",
    )
    add("--init_from", default=None, help="Start the generator from a saved colorizer folder (e.g. an L1 pretrain).")
    add(
        "--hints",
        action="store_true",
        help="Build the colorizer to take colour hints (L + a hint map; trained on points sampled from the true "
        "colours). With --init_from an automatic model, its weights are kept and the new hint inputs start at zero.",
    )


def _data_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add(
        "--dataset",
        default=None,
        help="Hub dataset id, local image folder, data file (.parquet/.csv/.tsv/.json/.jsonl/.arrow) or a folder of "
        "them, or a save_to_disk folder (required).",
    )
    add("--dataset_config", default=None, help="Configuration name of a Hub dataset that has several.")
    add("--split", default="train", help="Split to train on.")
    add(
        "--val_split",
        default=None,
        help="Split to validate on; unset: the dataset's 'validation' split if it has one.",
    )
    add("--val_fraction", type=float, default=0.0, help="Seeded hold-out fraction when there is no --val_split.")
    add(
        "--image_column",
        default=None,
        help="Column holding the images or image paths; unset: the datasets.Image column (else the one of image "
        "bytes or file names).",
    )
    add("--caption_column", default=None, help="Column holding captions (controlnet prompts); unset: no captions.")
    add("--streaming", action="store_true", help="Stream the dataset (needs --max_train_steps).")
    add("--max_train_samples", type=int, default=None, help="Train on the first N images only (quick runs).")
    add("--resolution", type=int, default=256, help="Side of the square training crops, in pixels.")
    add(
        "--max_resolution",
        type=int,
        default=None,
        help="Multi-scale training: each batch's side is drawn from --resolution..this (multiples of the model's "
        "size multiple), so the colorizer holds up at every working size in the range. Unset: --resolution only.",
    )
    add(
        "--crop_scale",
        type=float,
        nargs=2,
        default=[0.25, 1.0],
        metavar=("MIN", "MAX"),
        help="Random resized crops cover this fraction of the photo's area.",
    )
    add("--no_hflip", action="store_true", help="Do not flip training crops horizontally at random.")
    add(
        "--composite_cutouts",
        default=None,
        metavar="DIR",
        help="Compositing augmentation: paste 1-2 photographic cut-outs from DIR (built by python -m trainer.cutouts "
        "build --out DIR) onto training crops, never onto validation photos; the run summary and model card say so. "
        "Unset: off.",
    )
    add(
        "--composite_probability",
        type=float,
        default=0.5,
        help="With --composite_cutouts: share of training crops that get cut-outs pasted on them.",
    )
    add("--drop_grayscale", action="store_true", help="Skip black-and-white photos inside a colour dataset.")
    add("--allow_grayscale", action="store_true", help="Train even if most photos are black-and-white.")
    add("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes (0: the main process).")


def _optimisation_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add("--seed", type=int, default=0, help="Seed of weights, data order, augmentation and the validation split.")
    add("--train_batch_size", type=int, default=4, help="Batch size per device (process).")
    add("--num_train_epochs", type=int, default=1, help="Epochs to train (ignored when --max_train_steps is set).")
    add("--max_train_steps", type=int, default=None, help="Optimizer steps to train; overrides --num_train_epochs.")
    add("--gradient_accumulation_steps", type=int, default=1, help="Batches per optimizer step.")
    add("--learning_rate", type=float, default=2e-4, help="Generator (or ControlNet) learning rate.")
    add("--adam_beta1", type=float, default=0.5, help="Adam beta1 (pix2pix uses 0.5).")
    add("--adam_beta2", type=float, default=0.999, help="Adam beta2.")
    add("--adam_weight_decay", type=float, default=0.0, help="Adam(W) weight decay.")
    add(
        "--lr_scheduler",
        default="constant",
        choices=SCHEDULER_NAMES,
        help="Learning-rate schedule (diffusers.optimization.get_scheduler).",
    )
    add("--lr_warmup_steps", type=int, default=0, help="Linear warm-up steps (not used by 'constant').")
    add("--losses", default="l1", help="Reconstruction losses with weights: 'l1', 'mse', 'l1:1,ssim:0.5', ...")
    add(
        "--class_rebalancing",
        type=float,
        default=0.5,
        help="'classes' loss: lambda in Zhang et al.'s weights ((1 - lambda) * prior + lambda / Q)^-1; 1 = no "
        "rebalancing, 0 = full inverse frequency (the paper uses 0.5).",
    )
    add("--perceptual_weights", default=None, help="torchvision VGG16 state dict file for the perceptual loss.")
    add("--ema_decay", type=float, default=0.0, help="Keep an EMA of G with this decay (e.g. 0.999); 0 disables.")
    add("--max_grad_norm", type=float, default=0.0, help="Clip gradients to this norm (0 disables).")
    add("--max_nonfinite_steps", type=int, default=5, help="Stop after this many NaN/inf steps in a row.")
    add(
        "--mixed_precision",
        choices=["no", "fp16", "bf16"],
        default=None,
        help="Mixed precision; unset: what `accelerate launch --mixed_precision` or `accelerate config` set (no "
        "when neither does). fp16 needs a GPU.",
    )
    add("--channels_last", action="store_true", help="channels_last memory format for the generator.")


def _gan_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add(
        "--discriminator",
        choices=["auto", "patchgan", "none"],
        default="auto",
        help="auto: a PatchGAN for pix2pix_* models, none for the regression baselines.",
    )
    add("--d_layers", type=int, default=3, help="PatchGAN layers (3 = 70x70 receptive field).")
    add("--d_width", type=int, default=64, help="Channels of the PatchGAN's first layer.")
    add("--d_norm", choices=["batch", "instance"], default="batch", help="Normalisation layers of the PatchGAN.")
    add("--d_spectral_norm", action="store_true", help="Spectral norm on D's convolutions (steadier GAN).")
    add("--d_learning_rate", type=float, default=None, help="Discriminator learning rate; unset: --learning_rate.")
    add("--lambda_l1", type=float, default=100.0, help="Weight of the reconstruction loss next to the GAN loss.")
    add("--lambda_gan", type=float, default=1.0, help="Weight of the generator's adversarial loss (0: no GAN).")
    add("--gan_mode", choices=["vanilla", "lsgan", "hinge"], default="vanilla", help="GAN loss.")
    add("--real_label", type=float, default=1.0, help="Target for real patches (0.9 = one-sided label smoothing).")
    add("--d_start_step", type=int, default=0, help="Train G with the reconstruction loss alone until this step.")
    add("--d_start_epoch", type=int, default=0, help="Same, in epochs (the later of the two wins).")


def _diffusion_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add("--base_model", default=None, help="controlnet: base Stable Diffusion folder or Hub id ('tiny' builds one).")
    add(
        "--proportion_empty_prompts",
        type=float,
        default=0.0,
        help="controlnet: share of captions replaced by the empty prompt.",
    )
    add("--num_validation_samples", type=int, default=2, help="controlnet: samples per validation image.")


def _logging_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add("--output_dir", default="outputs/colorizer", help="Where checkpoints, logs and the output model go.")
    add("--num_validation_images", type=int, default=32, help="Held-out photos scored at each validation.")
    add("--validation_steps", type=int, default=500, help="Validate every N optimizer steps (0: only at the end).")
    add(
        "--early_stopping_metric",
        default="ciede2000",
        choices=EARLY_STOPPING_METRICS,
        help="Validation metric that picks the best checkpoint and drives early stopping.",
    )
    add(
        "--early_stopping_patience",
        type=int,
        default=0,
        help="Validations without improvement before stopping (0: never).",
    )
    add("--checkpointing_steps", type=int, default=500, help="Save a resumable checkpoint every N steps (0: never).")
    add("--checkpoints_total_limit", type=int, default=None, help="Keep only the newest N checkpoints.")
    add("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder.")
    add("--final_model", choices=["best", "last"], default="best", help="Which generator becomes the output model.")
    add("--save_dtype", choices=["fp32", "fp16"], default="fp32", help="dtype of the saved output weights.")
    add(
        "--report_to",
        default="tensorboard",
        choices=REPORT_TO,
        help="Tracker for losses, metrics and validation grids ('all': every installed one).",
    )
    add("--logging_dir", default="logs", help="Tracker logs, inside --output_dir.")
    add("--logging_steps", type=int, default=10, help="Log mean training losses, images/s and LR every N steps.")
    add("--title", default=None, help="Title of the model card.")


def _hub_arguments(group: argparse._ArgumentGroup) -> None:
    add = group.add_argument
    add(
        "--push_to_hub",
        action="store_true",
        help="Upload the output model and its logs; the repo and your login are checked before training.",
    )
    add("--hub_model_id", default=None, help="Model repo USER/NAME to create or update (with --push_to_hub).")
    add("--hub_private", action="store_true", help="Create the repo as private.")
    add("--hub_token", default=None, help="Hub token; unset: HF_TOKEN or the saved login.")


GROUPS = (
    ("model", _model_arguments),
    ("data", _data_arguments),
    ("optimisation", _optimisation_arguments),
    ("GAN (pix2pix models)", _gan_arguments),
    ("diffusion (--model controlnet)", _diffusion_arguments),
    ("validation, logging and checkpoints", _logging_arguments),
    ("Hugging Face Hub", _hub_arguments),
)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="YAML preset: a path or a name in trainer/configs (e.g. tiny, pix2pix_256)."
    )


def _build_parser() -> argparse.ArgumentParser:
    # Flags are spelled with underscores (as in diffusers); FlagParser accepts `--two-words` for each as well.
    parser = FlagParser(
        description="Train a ColorLab colorizer: pix2pix cGAN, a seed baseline or the ControlNet diffusion colorizer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _config_argument(parser)
    for title, add_arguments in GROUPS:
        add_arguments(parser.add_argument_group(title))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _build_parser()
    # --config first, with a parser that knows nothing else: `--config tiny --help` then shows the preset's values.
    config_parser = argparse.ArgumentParser(add_help=False)
    _config_argument(config_parser)
    config_name = config_parser.parse_known_args(argv)[0].config
    preset: dict[str, Any] = {}
    if config_name:
        preset = yaml.safe_load(_resolve_config(config_name).read_text()) or {}
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(preset) - known)
        if unknown:
            parser.error(f"{config_name} sets unknown options {unknown}")
        parser.set_defaults(**preset)
    args = parser.parse_args(argv)
    _check_choices(parser, args, preset, config_name)
    _validate(parser, args)
    return args


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


def _check_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.model == "controlnet":
        return
    from models.registry import list_models  # torch: only once the arguments are otherwise fine

    known = list_models()
    if args.model not in known:
        parser.error(
            f"--model {args.model} is not a registered model{_suggestion(args.model, known)}; choose one of "
            f"{', '.join(known)} or controlnet"
        )


def _check_tracker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    package = TRACKER_PACKAGES.get(args.report_to)
    if package and importlib.util.find_spec(package) is None:
        parser.error(
            f"--report_to {args.report_to} needs the {package} package, which is not installed: pip install "
            f"{package} (or pass --report_to none)"
        )


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
    if not 0 <= args.class_rebalancing <= 1:
        parser.error(f"--class_rebalancing must be between 0 and 1, got {args.class_rebalancing}")
    if not 0 < args.crop_scale[0] <= args.crop_scale[1] <= 1:
        parser.error(f"--crop_scale must satisfy 0 < MIN <= MAX <= 1, got {args.crop_scale}")
    if not 0 < args.composite_probability <= 1:
        parser.error(f"--composite_probability must be above 0 and at most 1, got {args.composite_probability}")
    if args.composite_cutouts:
        from trainer.cutout_set import CutoutSetError, read_cutout_set  # standard library only

        try:
            read_cutout_set(args.composite_cutouts)
        except CutoutSetError as error:
            parser.error(str(error).rstrip("."))
    if not 0 <= args.proportion_empty_prompts <= 1:
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
    if "perceptual" in args.losses and not args.perceptual_weights:
        parser.error(
            "the perceptual loss needs ImageNet VGG16 weights: pass --perceptual_weights vgg16.pth (none can be "
            "downloaded here, and random VGG features would not be a perceptual loss)"
        )
    if args.perceptual_weights and not Path(args.perceptual_weights).is_file():
        parser.error(f"--perceptual_weights {args.perceptual_weights} does not exist")
    if args.model != "controlnet":
        from trainer.losses import parse_loss_spec  # torch: only once the cheap checks passed

        try:
            parse_loss_spec(args.losses)
        except ValueError as error:
            parser.error(str(error).rstrip("."))
    _check_model(parser, args)


def loggable(args: argparse.Namespace) -> dict[str, Any]:
    """Args as tracker-friendly scalars (no token)."""
    config = {}
    for key, value in vars(args).items():
        if key == "hub_token":
            continue
        config[key] = value if isinstance(value, int | float | str | bool) else json.dumps(value)
    return config
