"""The ControlNet diffusion colorizer's training loop, run by `trainer/train.py --model controlnet`.

    accelerate launch trainer/train.py --config controlnet_tiny --dataset path/to/photos --output_dir outputs/cn_tiny
    accelerate launch --mixed_precision bf16 trainer/train.py --config controlnet_sd --dataset user/photos \
        --output_dir outputs/controlnet_sd      # a GPU and the downloaded Stable Diffusion 1.5 weights

diffusers' examples/controlnet/train_controlnet.py recipe on ColorLab's data pipeline: the base
(UNet, VAE, text encoder) is frozen in the mixed-precision dtype, the ControlNet is float32 and
trained with AdamW on the noise-prediction MSE (trainer/diffusion_step.py); captions come from
`--caption_column` (else the empty prompt) and a `--proportion_empty_prompts` share is dropped.
This script holds the family's setup and its step body (`diffusion_step`); the epoch/step loop,
data order and augmentation, checkpoints, exact resume, the NaN/inf guard and the finishing sequence
are the pix2pix family's too (trainer.run, trainer.loop); validation grids show `--num_validation_samples`
colourings per photo and its metrics average over all of them. The output is always the last
weights, saved as a diffusers folder plus colorlab_diffusion.json and a model card
(models.diffusion.save_diffusion_colorizer), which models.hub.load_colorizer and the app load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from models.diffusion import (
    DiffusionColorizer,
    DiffusionSettings,
    create_diffusion_components,
    save_diffusion_colorizer,
)
from models.diffusion_components import CONTROLNET_SUBFOLDER, DiffusionComponents, cast_module, make_noise_scheduler
from models.widget_example import write_widget_example
from trainer.checkpoints import TrainingState
from trainer.config import ControlNetTrainingConfig
from trainer.diffusion_step import controlnet_training_step, make_training_batch, prepare_for_training
from trainer.loop import (
    TrainingError,
    all_finite,
    build_datasets,
    launch_command,
    make_train_loader,
    resume_if_asked,
    training_length,
)
from trainer.run import Validation, card_validation, finish_training, train_loop
from trainer.schedule import build_scheduler
from trainer.tracking import print_run_summary, start_trackers
from trainer.validation import Validator

# The frozen base runs in the mixed-precision dtype; the ControlNet and its optimizer stay float32.
WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def check_controlnet_args(args: ControlNetTrainingConfig) -> None:
    """Refuse, in one sentence, what this loop cannot do (before anything is loaded)."""
    if not args.base_model:
        raise ValueError(
            "--model controlnet needs --base_model: 'tiny' (random in-code base, for tests) or a Stable Diffusion "
            "folder / Hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5."
        )
    if args.num_validation_samples < 1:
        raise ValueError(f"--num_validation_samples must be at least 1, got {args.num_validation_samples}.")
    unsupported = [
        flag
        for flag, used in (
            ("--ema_decay", args.ema_decay > 0),
            ("--early_stopping_patience", args.early_stopping_patience > 0),
            ("--channels_last", args.channels_last),
        )
        if used
    ]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)}: not supported with --model controlnet; drop it.")


def build_components(args: ControlNetTrainingConfig, weight_dtype: torch.dtype) -> DiffusionComponents:
    """The base in `weight_dtype` plus a ControlNet: a new one from the UNet, or the one `--init_from` names."""
    controlnet_source = None
    if args.init_from:
        folder = Path(args.init_from)
        controlnet_source = folder / CONTROLNET_SUBFOLDER if (folder / CONTROLNET_SUBFOLDER).is_dir() else folder
    return create_diffusion_components(
        args.base_model, dtype=weight_dtype, controlnet_source=controlnet_source, seed=args.seed
    )


def sampling_settings(args: ControlNetTrainingConfig) -> DiffusionSettings:
    """What validation samples with and the saved colorizer defaults to: the training resolution and seed."""
    return DiffusionSettings(base_model=args.base_model, resolution=args.resolution, seed=args.seed)


def train_controlnet(args: ControlNetTrainingConfig, accelerator: Accelerator) -> Path:
    """Train the ControlNet on a frozen base; returns the output folder (a diffusion colorizer)."""
    check_controlnet_args(args)
    weight_dtype = WEIGHT_DTYPES[accelerator.mixed_precision]
    components = build_components(args, weight_dtype)
    if args.resolution % components.size_multiple:
        multiple = components.size_multiple
        raise TrainingError(
            f"--resolution {args.resolution} is not a multiple of {multiple}, which this base needs; "
            f"use e.g. {max(multiple, args.resolution // multiple * multiple)}."
        )
    prepare_for_training(components, weight_dtype=weight_dtype, device=accelerator.device)
    noise_scheduler = make_noise_scheduler(components)

    train_dataset, validator = build_datasets(args)
    loader = make_train_loader(args, train_dataset)
    steps_per_epoch, max_steps = training_length(args, loader, accelerator)
    examples = None if args.streaming else len(train_dataset)
    print_run_summary(accelerator, args, examples=examples, steps_per_epoch=steps_per_epoch, max_steps=max_steps)
    optimizer = torch.optim.AdamW(
        components.controlnet.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
    )
    lr_scheduler = build_scheduler(  # schedulers count every process's steps, as in diffusers
        args.lr_scheduler,
        optimizer,
        warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        total_steps=max_steps * accelerator.num_processes,
    )
    controlnet, optimizer, lr_scheduler, loader = accelerator.prepare(
        components.controlnet, optimizer, lr_scheduler, loader
    )
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    resume_if_asked(accelerator, args, state)
    start_trackers(accelerator, args)

    # Validation samples with the live (unwrapped) ControlNet; only the main rank validates.
    sampler = None
    if validator is not None and accelerator.is_main_process:
        sampler = DiffusionColorizer(components, settings=sampling_settings(args), device=accelerator.device)
    count = args.num_validation_samples

    def predict(l_norm: torch.Tensor) -> torch.Tensor:  # (B, 1, s, s) -> (B, k, 2, s, s)
        return sampler.predict_ab(l_norm, num_samples=count).unflatten(0, (l_norm.shape[0], count))

    validation = None
    if validator is not None:  # the output is always the last weights: no best tracking
        validation = Validation(validator, predict, label=f" ({count} samples per photo)")

    def diffusion_step(batch: dict[str, Any]) -> tuple[dict[str, float], bool]:
        """One micro-batch: the noise-prediction loss of diffusers' ControlNet recipe, and the update if finite."""
        inputs = make_training_batch(batch["L"], batch["ab"], components.tokenizer, captions=batch.get("caption"))
        loss = controlnet_training_step(
            components,
            inputs,
            controlnet=controlnet,
            noise_scheduler=noise_scheduler,
            proportion_empty_prompts=args.proportion_empty_prompts,
        )
        logs = {}
        finite = all_finite(accelerator, loss)
        if finite:
            accelerator.backward(loss)
            if args.max_grad_norm and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(controlnet.parameters(), args.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            logs["loss"] = float(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        return logs, not finite

    train_loop(
        accelerator,
        args,
        state,
        loader=loader,
        train_dataset=train_dataset,
        max_steps=max_steps,
        modules=[controlnet],
        step=diffusion_step,
        learning_rate=lambda: lr_scheduler.get_last_lr()[0],
        validation=validation,
        desc="training controlnet",
    )
    return finish_training(
        accelerator,
        args,
        state,
        components.controlnet,
        validator,
        write_output=lambda skipped_note: write_output(args, state, components, validator, skipped_note),
        what="diffusion colorizer",
    )


def _saved_components(args: ControlNetTrainingConfig, components: DiffusionComponents) -> DiffusionComponents:
    """What to save: the trained ControlNet on the base in full precision (or all float16 with --save_dtype fp16).

    A base frozen in half precision for training is re-read (or rebuilt, for the tiny base) in float32 rather
    than saved as its rounded copy.
    """
    saved = components
    if components.unet.dtype != torch.float32:
        saved = create_diffusion_components(args.base_model, dtype=torch.float32, seed=args.seed)
        saved.controlnet = components.controlnet
    if args.save_dtype == "fp16":
        for module in [*saved.base_modules(), saved.controlnet]:
            cast_module(module, torch.float16)
    return saved


def write_output(
    args: ControlNetTrainingConfig,
    state: TrainingState,
    components: DiffusionComponents,
    validator: Validator | None,
    skipped_note: str,
) -> None:
    """The main rank's output folder: the diffusion colorizer (the last weights) with its card and sample grid."""
    output_dir = Path(args.output_dir)
    samples = args.num_validation_samples
    settings = sampling_settings(args)
    card_data = {
        "dataset": args.dataset,
        "steps": state.global_step,
        "images_seen": state.images_seen,
        "resolution": args.resolution,
        "command": launch_command(),
        "notes": f"Data: {skipped_note}. Output = the last weights (step {state.global_step}); the loss is the "
        f"noise-prediction MSE, {args.proportion_empty_prompts:.0%} of the prompts dropped."
        + (
            f" Validation metrics average {samples} sampled colourings per photo ({settings.num_inference_steps} "
            f"{settings.scheduler} steps, seeds "
            f"{args.seed}..{args.seed + samples - 1})."
            if validator is not None
            else ""
        ),
    }
    if args.title:
        card_data["title"] = args.title
    label = f"model (step {state.global_step}, mean of {samples} samples)"
    card_validation(card_data, state, validator, output_dir, step=state.global_step, label=label)
    card_data["widget_example"] = write_widget_example(None, output_dir)  # the input only: sampling is slow
    save_diffusion_colorizer(_saved_components(args, components), output_dir, settings=settings, card_data=card_data)
