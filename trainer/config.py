"""The typed training configuration: one dataclass per model family, each field declared once.

    config = parse_args(["--config", "tiny", "--dataset", "photos/"])   # trainer.args: presets + flags -> a config
    isinstance(config, GANTrainingConfig)                               # pix2pix and the regression baselines
    config.lambda_l1, config.resolution                                 # typed attributes, named like the flags

Three layers, by inheritance so every field keeps its flag's name as a flat attribute (`config.lambda_l1`, as the
Namespace had it: the tracker's hyper-parameters, the card and resume read the same names):

- `TrainingConfig`: what every family uses (model, data, optimisation, validation / logging / checkpoints, Hub);
- `GANTrainingConfig(TrainingConfig)`: `trainer/train.py`'s family, pix2pix models and the regression baselines:
  the generator's fields (`--model_overrides`, `--hints`, `--losses`, `--final_model`, ...: the ControlNet has a
  fixed architecture, a fixed noise-prediction loss and always outputs its last weights, so it would ignore them),
  plus the discriminator and adversarial-loss fields (which matter only when a discriminator trains);
- `ControlNetTrainingConfig(TrainingConfig)`: `--model controlnet`, plus the diffusion fields.

A field every family does not use belongs to its family's class: trainer.args then refuses it, typed or in a preset,
for the other family, rather than let it silently do nothing.

Each field carries its flag's help text, argparse group, and (where needed) choices, value parser, nargs and
metavar in its metadata (`option(...)`); trainer.args generates the parser, `--help` and the checks from these
declarations, so a flag is added in one place. Standard library only: `--help` must not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from models.metric_table import EARLY_STOPPING_METRICS
from trainer.schedule import SCHEDULER_NAMES

# --report_to value -> the package its tracker needs (accelerate's "all" takes whichever are installed).
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}
REPORT_TO = (*TRACKER_PACKAGES, "all", "none")
CONTROLNET = "controlnet"  # the --model value of the diffusion family
HINT_LOSSES = ("served", "network")  # --hint_loss: trainer.hint_training.served_propagation

# The argparse groups of the shared fields, in --help's order (each family's own fields form the groups after them).
MODEL, DATA, OPTIMISATION, LOGGING, HUB = (
    "shared: model",
    "shared: data",
    "shared: optimisation",
    "shared: validation, logging and checkpoints",
    "shared: Hugging Face Hub",
)
GAN_GENERATOR = "pix2pix and baselines: the generator, its losses and the output model"
GAN_DISCRIMINATOR = "GAN: the discriminator (pix2pix models, or any model with --discriminator patchgan)"
GAN_LOSS = "GAN: adversarial loss and schedule"
DIFFUSION = "diffusion (--model controlnet)"
TOP_LEVEL = ""  # --config: argparse's general options, next to --help


def json_object(text: str) -> dict[str, Any]:
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


def option(
    default: Any,
    help: str,
    *,
    group: str,
    choices: Sequence[str] | None = None,
    parse: Callable[[str], Any] | None = None,
    nargs: int | None = None,
    metavar: str | tuple[str, ...] | None = None,
) -> Any:
    """A config field and its flag: default, help text and argparse group, plus what argparse needs beyond the type."""
    metadata = {"help": help, "group": group, "choices": choices, "parse": parse, "nargs": nargs, "metavar": metavar}
    if isinstance(default, list | dict):  # a fresh copy per config (ruff's RUF009 cannot see this: noqa there)
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainingConfig:
    """The fields every model family trains with (see the module docstring)."""

    #: the family's name in the sentence that refuses its flags for another family's --model
    FAMILY: ClassVar[str] = "shared"

    config: str | None = option(
        None, "YAML preset: a path or a name in trainer/configs (e.g. tiny, pix2pix_256).", group=TOP_LEVEL
    )
    # --- model
    model: str = option(
        "pix2pix_unet256",
        "Registry name (see models.registry.list_models) or 'controlnet'; picks the family of the other flags.",
        group=MODEL,
    )
    init_from: str | None = option(
        None, "Start the generator from a saved colorizer folder (e.g. an L1 pretrain).", group=MODEL
    )
    # --- data
    dataset: str | None = option(
        None,
        "Hub dataset id, local image folder, data file (.parquet/.csv/.tsv/.json/.jsonl/.arrow) or a folder of them, "
        "or a save_to_disk folder (required).",
        group=DATA,
    )
    dataset_config: str | None = option(None, "Configuration name of a Hub dataset that has several.", group=DATA)
    split: str = option("train", "Split to train on.", group=DATA)
    val_split: str | None = option(
        None, "Split to validate on; unset: the dataset's 'validation' split if it has one.", group=DATA
    )
    val_fraction: float = option(0.0, "Seeded hold-out fraction when there is no --val_split.", group=DATA)
    image_column: str | None = option(
        None,
        "Column holding the images or image paths; unset: the datasets.Image column (else the one of image bytes or "
        "file names).",
        group=DATA,
    )
    caption_column: str | None = option(
        None, "Column holding captions (controlnet prompts); unset: no captions.", group=DATA
    )
    streaming: bool = option(False, "Stream the dataset (needs --max_train_steps).", group=DATA)
    max_train_samples: int | None = option(None, "Train on the first N images only (quick runs).", group=DATA)
    resolution: int = option(256, "Side of the square training crops, in pixels.", group=DATA)
    max_resolution: int | None = option(
        None,
        "Multi-scale training: each batch's side is drawn from --resolution..this (multiples of the model's size "
        "multiple), so the colorizer holds up at every working size in the range. Unset: --resolution only.",
        group=DATA,
    )
    crop_scale: list[float] = option(  # noqa: RUF009 - option() gives a list or dict a default_factory
        [0.25, 1.0],
        "Random resized crops cover this fraction of the photo's area.",
        group=DATA,
        nargs=2,
        metavar=("MIN", "MAX"),
    )
    no_hflip: bool = option(False, "Do not flip training crops horizontally at random.", group=DATA)
    composite_cutouts: str | None = option(
        None,
        "Compositing augmentation: paste 1-2 photographic cut-outs from DIR (built by python -m corpus.cutouts build "
        "--out DIR) onto training crops, never onto validation photos; the run summary and model card say so. "
        "Unset: off.",
        group=DATA,
        metavar="DIR",
    )
    composite_probability: float = option(
        0.5, "With --composite_cutouts: share of training crops that get cut-outs pasted on them.", group=DATA
    )
    drop_grayscale: bool = option(False, "Skip black-and-white photos inside a colour dataset.", group=DATA)
    allow_grayscale: bool = option(False, "Train even if most photos are black-and-white.", group=DATA)
    dataloader_num_workers: int = option(0, "DataLoader worker processes (0: the main process).", group=DATA)
    # --- optimisation
    seed: int = option(0, "Seed of weights, data order, augmentation and the validation split.", group=OPTIMISATION)
    train_batch_size: int = option(4, "Batch size per device (process).", group=OPTIMISATION)
    num_train_epochs: int = option(1, "Epochs to train (ignored when --max_train_steps is set).", group=OPTIMISATION)
    max_train_steps: int | None = option(
        None, "Optimizer steps to train; overrides --num_train_epochs.", group=OPTIMISATION
    )
    gradient_accumulation_steps: int = option(1, "Batches per optimizer step.", group=OPTIMISATION)
    learning_rate: float = option(2e-4, "Generator (or ControlNet) learning rate.", group=OPTIMISATION)
    adam_beta1: float = option(0.5, "Adam beta1 (pix2pix uses 0.5).", group=OPTIMISATION)
    adam_beta2: float = option(0.999, "Adam beta2.", group=OPTIMISATION)
    adam_weight_decay: float = option(0.0, "Adam(W) weight decay.", group=OPTIMISATION)
    lr_scheduler: str = option(
        "constant",
        "Learning-rate schedule (diffusers.optimization.get_scheduler).",
        group=OPTIMISATION,
        choices=SCHEDULER_NAMES,
    )
    lr_warmup_steps: int = option(0, "Linear warm-up steps (not used by 'constant').", group=OPTIMISATION)
    ema_decay: float = option(0.0, "Keep an EMA of G with this decay (e.g. 0.999); 0 disables.", group=OPTIMISATION)
    max_grad_norm: float = option(0.0, "Clip gradients to this norm (0 disables).", group=OPTIMISATION)
    max_nonfinite_steps: int = option(5, "Stop after this many NaN/inf steps in a row.", group=OPTIMISATION)
    mixed_precision: str | None = option(
        None,
        "Mixed precision; unset: what `accelerate launch --mixed_precision` or `accelerate config` set (no when "
        "neither does). fp16 needs a GPU.",
        group=OPTIMISATION,
        choices=("no", "fp16", "bf16"),
    )
    channels_last: bool = option(False, "channels_last memory format for the generator.", group=OPTIMISATION)
    # --- validation, logging and checkpoints
    output_dir: str = option("outputs/colorizer", "Where checkpoints, logs and the output model go.", group=LOGGING)
    num_validation_images: int = option(32, "Held-out photos scored at each validation.", group=LOGGING)
    validation_steps: int = option(500, "Validate every N optimizer steps (0: only at the end).", group=LOGGING)
    early_stopping_metric: str = option(
        "ciede2000",
        "Validation metric that picks the best checkpoint and drives early stopping.",
        group=LOGGING,
        choices=EARLY_STOPPING_METRICS,
    )
    early_stopping_patience: int = option(
        0, "Validations without improvement before stopping (0: never).", group=LOGGING
    )
    checkpointing_steps: int = option(500, "Save a resumable checkpoint every N steps (0: never).", group=LOGGING)
    checkpoints_total_limit: int | None = option(None, "Keep only the newest N checkpoints.", group=LOGGING)
    resume_from_checkpoint: str | None = option(None, "'latest' or a checkpoint folder.", group=LOGGING)
    save_dtype: str = option("fp32", "dtype of the saved output weights.", group=LOGGING, choices=("fp32", "fp16"))
    report_to: str = option(
        "tensorboard",
        "Tracker for losses, metrics and validation grids ('all': every installed one).",
        group=LOGGING,
        choices=REPORT_TO,
    )
    logging_dir: str = option("logs", "Tracker logs, inside --output_dir.", group=LOGGING)
    logging_steps: int = option(10, "Log mean training losses, images/s and LR every N steps.", group=LOGGING)
    title: str | None = option(None, "Title of the model card.", group=LOGGING)
    # --- Hugging Face Hub
    push_to_hub: bool = option(
        False,
        "Upload the output model and its logs; the repo and your login are checked before training.",
        group=HUB,
    )
    hub_model_id: str | None = option(
        None, "Model repo USER/NAME to create or update (with --push_to_hub).", group=HUB
    )
    hub_private: bool = option(False, "Create the repo as private.", group=HUB)
    hub_token: str | None = option(None, "Hub token; unset: HF_TOKEN or the saved login.", group=HUB)

    @classmethod
    def own_fields(cls) -> list[dataclasses.Field]:
        """The fields this class adds to its parent (all of them for TrainingConfig)."""
        inherited = {
            f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for f in dataclasses.fields(base)
        }
        return [f for f in dataclasses.fields(cls) if f.name not in inherited]


@dataclasses.dataclass
class GANTrainingConfig(TrainingConfig):
    """trainer/train.py's family: pix2pix models (a PatchGAN by default) and the regression baselines (none)."""

    FAMILY: ClassVar[str] = "pix2pix models and the regression baselines"
    #: the fields that decide whether a discriminator trains; the others mean nothing without one
    SWITCHES: ClassVar[tuple[str, ...]] = ("discriminator", "lambda_gan")

    # --- the generator: every model of this family, with or without a discriminator
    model_overrides: dict[str, Any] = option(  # noqa: RUF009 - option() gives a list or dict a default_factory
        {},
        "JSON object of constructor arguments for --model, e.g. '{\"depth\": 7}'. With --init_from they may only add "
        "blocks to the trained network, e.g. '{\"global_context\": true}'.",
        group=GAN_GENERATOR,
        parse=json_object,
    )
    hints: bool = option(
        False,
        "Build the colorizer to take colour hints (L + a hint map; trained on points sampled from the true colours). "
        "With --init_from an automatic model, its weights are kept and the new hint inputs start at zero.",
        group=GAN_GENERATOR,
    )
    hint_loss: str = option(
        "served",
        "With --hints, what the loss and validation see: 'served', the output after the model's hint propagation "
        "(models.hint_propagation), as the app and the CLI give it to users, so the network learns what to add to "
        "the spread; or 'network', the network's output alone.",
        group=GAN_GENERATOR,
        choices=HINT_LOSSES,
    )
    losses: str = option(
        "l1",
        "Reconstruction losses with weights, from l1, huber, mse, ssim, ciede2000, colourfulness, classes and "
        "perceptual: 'l1', 'l1:1,ssim:0.5', 'ciede2000,colourfulness:0.1', ...",
        group=GAN_GENERATOR,
    )
    class_rebalancing: float = option(
        0.5,
        "'classes' loss: lambda in Zhang et al.'s weights ((1 - lambda) * prior + lambda / Q)^-1; 1 = no "
        "rebalancing, 0 = full inverse frequency (the paper uses 0.5).",
        group=GAN_GENERATOR,
    )
    perceptual_weights: str | None = option(
        None, "torchvision VGG16 state dict file for the perceptual loss.", group=GAN_GENERATOR
    )
    final_model: str = option(
        "best",
        "Which generator becomes the output model: the best validation step's or the last.",
        group=GAN_GENERATOR,
        choices=("best", "last"),
    )
    # --- the discriminator and the adversarial loss: only when a discriminator trains
    discriminator: str = option(
        "auto",
        "auto: a PatchGAN for pix2pix_* models, none for the regression baselines.",
        group=GAN_DISCRIMINATOR,
        choices=("auto", "patchgan", "none"),
    )
    d_layers: int = option(3, "PatchGAN layers (3 = 70x70 receptive field).", group=GAN_DISCRIMINATOR)
    d_width: int = option(64, "Channels of the PatchGAN's first layer.", group=GAN_DISCRIMINATOR)
    d_norm: str = option(
        "batch", "Normalisation layers of the PatchGAN.", group=GAN_DISCRIMINATOR, choices=("batch", "instance")
    )
    d_spectral_norm: bool = option(False, "Spectral norm on D's convolutions (steadier GAN).", group=GAN_DISCRIMINATOR)
    d_learning_rate: float | None = option(
        None, "Discriminator learning rate; unset: --learning_rate.", group=GAN_DISCRIMINATOR
    )
    lambda_l1: float = option(100.0, "Weight of the reconstruction loss next to the GAN loss.", group=GAN_LOSS)
    lambda_gan: float = option(
        1.0, "Weight of the generator's adversarial loss (0: no GAN with --discriminator auto).", group=GAN_LOSS
    )
    gan_mode: str = option("vanilla", "GAN loss.", group=GAN_LOSS, choices=("vanilla", "lsgan", "hinge"))
    real_label: float = option(1.0, "Target for real patches (0.9 = one-sided label smoothing).", group=GAN_LOSS)
    d_start_step: int = option(0, "Train G with the reconstruction loss alone until this step.", group=GAN_LOSS)
    d_start_epoch: int = option(0, "Same, in epochs (the later of the two wins).", group=GAN_LOSS)

    @property
    def trains_discriminator(self) -> bool:
        """Whether a PatchGAN trains next to the generator."""
        if self.discriminator == "auto":
            return self.model.startswith("pix2pix") and self.lambda_gan > 0
        return self.discriminator == "patchgan"

    @classmethod
    def discriminator_fields(cls) -> list[dataclasses.Field]:
        """The fields that mean something only when a discriminator trains (the generator's always do)."""
        return [field for field in cls.own_fields() if field.metadata["group"] != GAN_GENERATOR]

    def no_discriminator_reason(self) -> tuple[str, str]:
        """(why this run has no discriminator, what would give it one), for the sentence refusing GAN flags."""
        if self.discriminator == "none":
            return "--discriminator none", "set --discriminator patchgan"
        if self.model.startswith("pix2pix"):
            return f"--lambda_gan {self.lambda_gan:g}", "set --lambda_gan above 0"
        return f"--model {self.model} is a regression baseline", "set --discriminator patchgan"


@dataclasses.dataclass
class ControlNetTrainingConfig(TrainingConfig):
    """`--model controlnet`: a ControlNet trained on a frozen Stable Diffusion base (trainer/train_controlnet.py)."""

    FAMILY: ClassVar[str] = "diffusion training (--model controlnet)"

    base_model: str | None = option(
        None, "Base Stable Diffusion folder or Hub id ('tiny' builds a random in-code one).", group=DIFFUSION
    )
    proportion_empty_prompts: float = option(0.0, "Share of captions replaced by the empty prompt.", group=DIFFUSION)
    num_validation_samples: int = option(2, "Samples per validation image.", group=DIFFUSION)


FAMILIES: tuple[type[TrainingConfig], ...] = (GANTrainingConfig, ControlNetTrainingConfig)
AnyTrainingConfig = GANTrainingConfig | ControlNetTrainingConfig


def family_of(model: str) -> type[TrainingConfig]:
    """The config class of the family `--model` belongs to."""
    return ControlNetTrainingConfig if model == CONTROLNET else GANTrainingConfig


def loggable(config: TrainingConfig) -> dict[str, Any]:
    """The config as tracker-friendly scalars (no token)."""
    values = {}
    for key, value in vars(config).items():
        if key == "hub_token":
            continue
        values[key] = value if isinstance(value, int | float | str | bool) else json.dumps(value)
    return values
