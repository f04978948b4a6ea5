"""The one epoch/step loop and finishing sequence of every training family; each family brings its step body.

    train_loop(accelerator, config, state, loader=loader, train_dataset=train_dataset, max_steps=max_steps,
               modules=(generator, discriminator), step=gan_step, learning_rate=lambda: scheduler.get_last_lr()[0],
               validation=Validation(validator, predict, save_best=save_best), desc="training")
    return finish_training(accelerator, config, state, model, validator, write_output=save, what="colorizer")

`trainer/train.py` (pix2pix and the baselines: a G/D step) and `trainer/train_controlnet.py` (a diffusion step)
each write `step(batch) -> (logged values, skipped)`, one micro-batch run inside `accelerator.accumulate`; this
module owns what they share: epochs and the resumed epoch's position, step counting, gradient accumulation, the
NaN/inf guard, the logging cadence and progress bar, validation (its cadence, records, grids, best tracking and early
stopping), checkpoints, and the finishing sequence (final validation, the ranks' agreement, writing the output,
pushing). The order of every draw, save and collective operation is the one both loops had, so resume stays exact.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from tqdm.auto import tqdm

from models.metric_table import is_better
from trainer.checkpoints import TrainingState, save_checkpoint
from trainer.config import TrainingConfig
from trainer.hint_training import format_metric
from trainer.loop import StepLog, TrainDataset, conclude, epoch_batches, push_if_asked, release, track_nonfinite
from trainer.tracking import log_validation_grid
from trainer.validation import Validator, plot_history, validation_metrics

# One micro-batch of a family's training: the batch in, (values to log, whether the update was skipped) out.
StepBody = Callable[[dict[str, Any]], tuple[dict[str, float], bool]]


@dataclass
class Validation:
    """How a family is validated: the held-out photos, what predicts their ab, and what it adds to the shared record.

    `predict` is what `Validator.run` calls (only on the main rank); `extra_metrics` adds metrics after it (a hint
    model's `hints10_` ones); `save_best` (given the step's metrics) saves the weights a new best validation step
    scores, and its presence turns on best tracking and early stopping; `label` follows "step N" in the log line.
    """

    validator: Validator
    predict: Callable[..., torch.Tensor]
    extra_metrics: Callable[[], dict[str, float]] | None = None
    save_best: Callable[[dict[str, float]], None] | None = None
    label: str = ""


def validate(accelerator: Accelerator, config: TrainingConfig, state: TrainingState, validation: Validation) -> bool:
    """Validate on the main rank (metrics into the history, trackers, grid, loss curves, the best so far); returns
    whether to stop early, agreed by all ranks."""
    stop = False
    if accelerator.is_main_process:
        step = state.global_step
        metrics = validation.validator.run(validation.predict, step=step)
        if validation.extra_metrics is not None:
            metrics.update(validation.extra_metrics())
        record = {"step": step, **{f"val_{k}": v for k, v in metrics.items()}}
        state.history.append(record)
        accelerator.log({k: v for k, v in record.items() if k != "step"}, step=step)
        log_validation_grid(accelerator, validation.validator.last_grid, step=step)
        plot_history(state.history, Path(config.output_dir) / "validation" / "loss_curves.png")
        best = ""
        if validation.save_best is not None:
            value = metrics[config.early_stopping_metric]
            if is_better(config.early_stopping_metric, value, state.best_metric):
                state.best_metric, state.best_step = value, step
                state.validations_without_improvement = 0
                validation.save_best(metrics)
            else:
                state.validations_without_improvement += 1
            patience = config.early_stopping_patience
            stop = bool(patience and state.validations_without_improvement >= patience)
            best = " (best)" if state.best_step == step else ""
        tqdm.write(
            f"step {step}{validation.label}: "
            + ", ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items())
            + best
        )
    return bool(broadcast_object_list([stop])[0])


def train_loop(
    accelerator: Accelerator,
    config: TrainingConfig,
    state: TrainingState,
    *,
    loader: Any,
    train_dataset: TrainDataset,
    max_steps: int,
    modules: Sequence[torch.nn.Module],
    step: StepBody,
    learning_rate: Callable[[], float],
    validation: Validation | None,
    desc: str,
    after_step: Callable[[], None] | None = None,
    before_final_validation: Callable[[], None] | None = None,
) -> None:
    """Train from `state` (fresh or resumed) to `max_steps` or early stopping, then run the final validation.

    `modules` are what `accelerator.accumulate` syncs; `after_step` runs after each optimizer step (an EMA update),
    `before_final_validation` once the loop has ended (making the ranks' buffers agree).
    """
    output_dir = Path(config.output_dir)
    log = StepLog(accelerator, state, max_steps, desc=desc, every=config.logging_steps)
    stop = state.global_step >= max_steps
    while not stop:
        for batch in epoch_batches(accelerator, loader, train_dataset, state):
            state.batches_seen_in_epoch += 1
            state.note_skipped(batch["skipped_corrupt"], batch["skipped_grayscale"])
            with accelerator.accumulate(*modules):
                logs, skipped = step(batch)
            track_nonfinite(accelerator, config, state, log.progress, skipped=skipped)
            log.add(logs, images=batch["L"].shape[0])
            if not accelerator.sync_gradients:
                continue

            state.global_step += 1
            state.images_seen += (
                config.train_batch_size * config.gradient_accumulation_steps * accelerator.num_processes
            )
            if after_step is not None:
                after_step()
            log.stepped(learning_rate())
            if validation is not None and config.validation_steps and state.global_step % config.validation_steps == 0:
                stop = validate(accelerator, config, state, validation)
            if config.checkpointing_steps and state.global_step % config.checkpointing_steps == 0:
                save_checkpoint(accelerator, output_dir, state.global_step, total_limit=config.checkpoints_total_limit)
            if state.global_step >= max_steps:
                stop = True
            if stop:
                break
        else:  # the epoch ran to its end
            state.epoch += 1
            state.batches_seen_in_epoch = 0
    log.close()
    if before_final_validation is not None:
        before_final_validation()
    if validation is not None and (not config.validation_steps or state.global_step % config.validation_steps):
        validate(accelerator, config, state, validation)


def card_validation(
    card_data: dict[str, Any],
    state: TrainingState,
    validator: Validator | None,
    output_dir: Path,
    *,
    step: int,
    label: str,
) -> None:
    """The card's validation facts for the weights of `step`: their metrics beside the grayscale baseline (under
    `label`), their sample grid (copied to samples.png) and the loss curves."""
    if validator is None:
        return
    metrics = validation_metrics(state.history, step)
    if metrics:
        card_data["metrics"] = {label: metrics, "grayscale baseline": validator.baseline}
    grid = output_dir / "validation" / f"samples-{step:07d}.png"
    if grid.is_file():
        shutil.copy2(grid, output_dir / "samples.png")
        card_data["sample_grid"] = "samples.png"
    plot_history(state.history, output_dir / "loss_curves.png")


def finish_training(
    accelerator: Accelerator,
    config: TrainingConfig,
    state: TrainingState,
    model: torch.nn.Module,
    validator: Validator | None,
    *,
    write_output: Callable[[str], None],
    what: str,
) -> Path:
    """Check the ranks agree on `model`'s weights; the main rank writes the output (`write_output`, given the data
    note for the card), then every rank ends together and the output is pushed if asked."""
    output_dir = Path(config.output_dir)
    skipped_note = conclude(accelerator, config, state, model, validator)
    if skipped_note is None:  # not the main rank
        return output_dir
    write_output(skipped_note)
    release(accelerator)
    tqdm.write(f"Saved the {what} to {output_dir} (load it with models.hub.load_colorizer).")
    push_if_asked(config)
    return output_dir
