"""Command-line arguments of `trainer/train.py`, with YAML presets (`--config trainer/configs/NAME.yaml`).

Flags follow the diffusers example trainers wherever the meaning is the same. A preset sets
defaults; anything given on the command line wins. Argument problems are reported before any
model or data is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train a ColorLab colorizer: pix2pix cGAN, a seed baseline or the ControlNet diffusion colorizer.",
    )
    add = p.add_argument
    add("--config", default=None, help="YAML preset: a path or a name in trainer/configs (e.g. tiny, pix2pix_256).")
    # model
    add("--model", default="pix2pix_unet256", help="Registry name (see models.registry.list_models) or 'controlnet'.")
    add("--model_overrides", type=json.loads, default={}, help="JSON of constructor overrides, e.g. '{\"depth\": 7}'.")
    add("--init_from", default=None, help="Start the generator from a saved colorizer folder (e.g. an L1 pretrain).")
    add(
        "--discriminator",
        choices=["auto", "patchgan", "none"],
        default="auto",
        help="auto: a PatchGAN for pix2pix_* models, none for the regression baselines.",
    )
    add("--d_layers", type=int, default=3, help="PatchGAN layers (3 = 70x70 receptive field).")
    add("--d_width", type=int, default=64)
    add("--d_norm", choices=["batch", "instance"], default="batch")
    add("--d_spectral_norm", action="store_true", help="Spectral norm on D's convolutions (steadier GAN).")
    add("--base_model", default=None, help="controlnet: base Stable Diffusion folder or Hub id ('tiny' builds one).")
    # data
    add("--dataset", default=None, help="Hub dataset id, local image folder, or a save_to_disk folder.")
    add("--dataset_config", default=None)
    add("--split", default="train")
    add("--val_split", default=None)
    add("--val_fraction", type=float, default=0.0, help="Seeded hold-out fraction when there is no --val_split.")
    add("--image_column", default=None)
    add("--caption_column", default=None)
    add("--streaming", action="store_true", help="Stream the dataset (needs --max_train_steps).")
    add("--max_train_samples", type=int, default=None)
    add("--resolution", type=int, default=256)
    add(
        "--max_resolution",
        type=int,
        default=None,
        help="Multi-scale training: each batch's side is drawn from --resolution..this (multiples of the model's "
        "size multiple), so the colorizer holds up at every working size in the range. Default: --resolution only.",
    )
    add("--crop_scale", type=float, nargs=2, default=[0.25, 1.0], metavar=("MIN", "MAX"))
    add("--no_hflip", action="store_true")
    add("--drop_grayscale", action="store_true", help="Skip black-and-white photos inside a colour dataset.")
    add("--allow_grayscale", action="store_true", help="Train even if most photos are black-and-white.")
    add("--dataloader_num_workers", type=int, default=0)
    add("--num_validation_images", type=int, default=32)
    # optimisation
    add("--output_dir", default="outputs/colorizer")
    add("--seed", type=int, default=0)
    add("--train_batch_size", type=int, default=4)
    add("--num_train_epochs", type=int, default=1)
    add("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs when set.")
    add("--gradient_accumulation_steps", type=int, default=1)
    add("--learning_rate", type=float, default=2e-4)
    add("--d_learning_rate", type=float, default=None, help="Discriminator LR (defaults to --learning_rate).")
    add("--adam_beta1", type=float, default=0.5)
    add("--adam_beta2", type=float, default=0.999)
    add("--adam_weight_decay", type=float, default=0.0)
    add("--lr_scheduler", default="constant", choices=["constant", "constant_with_warmup", "linear", "cosine"])
    add("--lr_warmup_steps", type=int, default=0)
    add("--losses", default="l1", help="Reconstruction losses with weights: 'l1', 'mse', 'l1:1,ssim:0.5', ...")
    add(
        "--class_rebalancing",
        type=float,
        default=0.5,
        help="'classes' loss: lambda in Zhang et al.'s weights ((1 - lambda) * prior + lambda / Q)^-1; 1 = no "
        "rebalancing, 0 = full inverse frequency, the paper's 0.5 by default.",
    )
    add("--perceptual_weights", default=None, help="torchvision VGG16 state dict file for the perceptual loss.")
    add("--lambda_l1", type=float, default=100.0, help="Weight of the reconstruction loss next to the GAN loss.")
    add("--lambda_gan", type=float, default=1.0)
    add("--gan_mode", choices=["vanilla", "lsgan", "hinge"], default="vanilla")
    add("--real_label", type=float, default=1.0, help="Target for real patches (0.9 = one-sided label smoothing).")
    add("--d_start_step", type=int, default=0, help="Train G with the reconstruction loss alone until this step.")
    add("--d_start_epoch", type=int, default=0, help="Same, in epochs (the later of the two wins).")
    add("--ema_decay", type=float, default=0.0, help="Keep an EMA of G with this decay (e.g. 0.999); 0 disables.")
    add("--max_grad_norm", type=float, default=0.0, help="Clip gradients to this norm (0 disables).")
    add("--max_nonfinite_steps", type=int, default=5, help="Stop after this many NaN/inf steps in a row.")
    add("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    add("--channels_last", action="store_true")
    # controlnet
    add("--proportion_empty_prompts", type=float, default=0.0)
    add("--num_validation_samples", type=int, default=2, help="controlnet: samples per validation image.")
    # validation, checkpoints, outputs
    add("--validation_steps", type=int, default=500)
    add("--early_stopping_metric", default="ciede2000")
    add(
        "--early_stopping_patience",
        type=int,
        default=0,
        help="Validations without improvement before stopping (0: never).",
    )
    add("--checkpointing_steps", type=int, default=500)
    add("--checkpoints_total_limit", type=int, default=None)
    add("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder.")
    add("--final_model", choices=["best", "last"], default="best", help="Which generator becomes the output model.")
    add("--save_dtype", choices=["fp32", "fp16"], default="fp32", help="dtype of the saved output weights.")
    add("--report_to", default="tensorboard", help="tensorboard, wandb, all or none.")
    add("--logging_dir", default="logs")
    add("--title", default=None, help="Title of the model card.")
    add("--push_to_hub", action="store_true")
    add("--hub_model_id", default=None)
    add("--hub_private", action="store_true")
    add("--hub_token", default=None)
    return p


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
    config_name = parser.parse_known_args(argv)[0].config
    if config_name:
        preset = yaml.safe_load(_resolve_config(config_name).read_text()) or {}
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(preset) - known)
        if unknown:
            parser.error(f"{config_name} sets unknown options {unknown}")
        parser.set_defaults(**preset)
    args = parser.parse_args(argv)
    _validate(parser, args)
    return args


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.dataset:
        parser.error("--dataset is required (a Hub dataset id, an image folder, or a save_to_disk folder)")
    if args.resolution < 16:
        parser.error(f"--resolution must be at least 16, got {args.resolution}")
    if args.train_batch_size < 1 or args.gradient_accumulation_steps < 1:
        parser.error("--train_batch_size and --gradient_accumulation_steps must be >= 1")
    if args.max_resolution is not None and args.max_resolution < args.resolution:
        parser.error(f"--max_resolution ({args.max_resolution}) must be at least --resolution ({args.resolution})")
    if not 0 <= args.class_rebalancing <= 1:
        parser.error(f"--class_rebalancing must be between 0 and 1, got {args.class_rebalancing}")
    if not 0 < args.crop_scale[0] <= args.crop_scale[1] <= 1:
        parser.error(f"--crop_scale must satisfy 0 < MIN <= MAX <= 1, got {args.crop_scale}")
    if not 0 <= args.proportion_empty_prompts <= 1:
        parser.error("--proportion_empty_prompts must be between 0 and 1")
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


def loggable(args: argparse.Namespace) -> dict[str, Any]:
    """Args as tracker-friendly scalars (no token)."""
    config = {}
    for key, value in vars(args).items():
        if key == "hub_token":
            continue
        config[key] = value if isinstance(value, int | float | str | bool) else json.dumps(value)
    return config
