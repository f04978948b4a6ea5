"""What a training run tells its trackers and its console, shared by both training loops.

    accelerator = create_accelerator(args)          # mixed precision: the flag, else accelerate launch / config
    start_trackers(accelerator, args)               # TensorBoard / W&B with the run's arguments
    print_run_summary(accelerator, args, examples=len(train_dataset), steps_per_epoch=..., max_steps=...)
    log_validation_grid(accelerator, validator.last_grid, step=state.global_step)

As in diffusers' example trainers: `--mixed_precision` left unset defers to the launcher, a summary of the run
comes first, and validation grids reach the trackers as images (diffusers' `log_validation`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from PIL import Image

from corpus.cutout_set import describe
from trainer.config import TrainingConfig, loggable
from trainer.loop import TrainingError

GRID_TAG = "validation/samples"


def create_accelerator(args: TrainingConfig) -> Accelerator:
    """The run's Accelerator; `--mixed_precision` None takes `accelerate launch --mixed_precision` / `accelerate
    config` (the ACCELERATE_MIXED_PRECISION variable the launcher sets), "no" when run without the launcher."""
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / args.logging_dir)
        ),
    )
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        # accelerate has no fp16 autocast on the CPU: the networks would train in float32 under an fp16 label.
        source = "--mixed_precision" if args.mixed_precision else "accelerate launch / accelerate config"
        raise TrainingError(
            f"fp16 mixed precision needs a GPU and this run is on the CPU (fp16 came from {source}); pass "
            "--mixed_precision no, or bf16 on a CPU with bf16 instructions."
        )
    return accelerator


def start_trackers(accelerator: Accelerator, args: TrainingConfig) -> None:
    """Create the output folder and start the trackers with the arguments (the precision as resolved)."""
    if accelerator.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        config = {**loggable(args), "mixed_precision": accelerator.mixed_precision}
        accelerator.init_trackers("colorlab", config=config)


def run_summary(
    accelerator: Accelerator, args: TrainingConfig, *, examples: int | None, steps_per_epoch: int, max_steps: int
) -> list[str]:
    """diffusers' "***** Running training *****" block; `examples` None for a stream (its length is unknown)."""
    total_batch = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    epochs = "unknown (streaming)" if examples is None else math.ceil(max_steps / steps_per_epoch)
    lines = [
        "***** Running training *****",
        f"  Num examples = {'unknown (streaming)' if examples is None else examples}",
        f"  Num epochs = {epochs}",
        f"  Instantaneous batch size per device = {args.train_batch_size}",
        f"  Total train batch size (w. parallel, distributed & accumulation) = {total_batch}",
        f"  Gradient accumulation steps = {args.gradient_accumulation_steps}",
        f"  Total optimization steps = {max_steps}",
        f"  Mixed precision = {accelerator.mixed_precision}",
    ]
    if args.composite_cutouts:  # a labelled augmentation: say it wherever the run is described
        lines.append(f"  Augmentation = {describe(args.composite_cutouts, args.composite_probability)}")
    return lines


def print_run_summary(
    accelerator: Accelerator, args: TrainingConfig, *, examples: int | None, steps_per_epoch: int, max_steps: int
) -> None:
    """Print `run_summary` once (on the main process)."""
    lines = run_summary(accelerator, args, examples=examples, steps_per_epoch=steps_per_epoch, max_steps=max_steps)
    accelerator.print("\n".join(lines))


def log_validation_grid(accelerator: Accelerator, grid: Image.Image | None, *, step: int) -> None:
    """Send a validation grid (gray | prediction(s) | truth) to TensorBoard and W&B as an image."""
    if grid is None:
        return
    caption = f"step {step}: " + "gray input | prediction | ground truth"
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image(GRID_TAG, np.asarray(grid.convert("RGB")), step, dataformats="HWC")
            tracker.writer.flush()
        elif tracker.name == "wandb":
            import wandb  # installed whenever this tracker runs (trainer.args refuses --report_to wandb without it)

            tracker.log({GRID_TAG: [wandb.Image(grid, caption=caption)]}, step=step)
