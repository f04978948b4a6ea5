"""Pieces under the one training loop (trainer/run.py) of `trainer/train.py` (pix2pix and baselines) and
`trainer/train_controlnet.py`.

Data, step counting, the epoch position of a resumed run, resuming, the NaN/inf guard, the step log and the final
weight digest live here once, so both families keep the same exact-resume and failure behaviour.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm

from corpus.cutout_set import CutoutSetError, describe, is_cutout_set
from corpus.dataset_sources import DataError, load_splits
from models.digest import weights_digest
from trainer.checkpoints import TrainingState, resolve_resume_path
from trainer.compositing import Compositor
from trainer.config import TrainingConfig
from trainer.data import ColorizationDataset, CropConfig, StreamingColorizationDataset, collate
from trainer.validation import Validator

TrainDataset = ColorizationDataset | StreamingColorizationDataset


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to change."""


def native_working_size(args: TrainingConfig, size_multiple: int) -> int:
    """The working size a colorizer trained with `args` serves best: its resolution, or the middle of its range.

    Validation runs at this size, and the saved config records it so app, CLI and evaluation use it by default.
    """
    if not args.max_resolution or args.max_resolution == args.resolution:
        return args.resolution
    middle = (args.resolution + args.max_resolution) / 2
    return max(size_multiple, round(middle / size_multiple) * size_multiple)


def build_datasets(args: TrainingConfig, size_multiple: int = 1) -> tuple[TrainDataset, Validator | None]:
    if args.dataset and is_cutout_set(args.dataset):
        raise DataError(
            f"--dataset {args.dataset} is a cut-out set: cut-outs are never training or validation photos; pass the "
            f"photo corpus as --dataset and the cut-outs as --composite_cutouts {args.dataset}."
        )
    compositor = None
    if args.composite_cutouts:
        try:
            compositor = Compositor.from_folder(args.composite_cutouts, probability=args.composite_probability)
        except CutoutSetError as error:
            raise DataError(str(error)) from error
    train_split, val_split, column = load_splits(
        args.dataset,
        dataset_config=args.dataset_config,
        split=args.split,
        val_split=args.val_split,
        val_fraction=args.val_fraction,
        image_column=args.image_column,
        caption_column=args.caption_column,
        streaming=args.streaming,
        max_train_samples=args.max_train_samples,
        seed=args.seed,
    )
    crop = CropConfig(
        resolution=args.resolution,
        scale=tuple(args.crop_scale),
        hflip=not args.no_hflip,
        max_resolution=args.max_resolution,
        size_multiple=size_multiple,
        batch_size=args.train_batch_size,
    )
    val_crop = CropConfig(resolution=native_working_size(args, size_multiple))
    options = dict(
        image_column=column,
        caption_column=args.caption_column,
        crop=crop,
        seed=args.seed,
        drop_grayscale=args.drop_grayscale,
    )
    train_options = dict(options, compositor=compositor)  # training crops only: validation never composites
    if args.streaming:
        if not args.max_train_steps:
            raise DataError("--streaming needs --max_train_steps: a stream's length (and so an epoch's) is unknown.")
        train = StreamingColorizationDataset(train_split, train=True, **train_options)
    else:
        train = ColorizationDataset(train_split, train=True, **train_options)
    validator = None
    if val_split is not None and len(val_split) > 0:
        val = ColorizationDataset(
            val_split,
            image_column=column,
            crop=val_crop,
            train=False,
            seed=args.seed,
            drop_grayscale=args.drop_grayscale,
        )
        count = min(args.num_validation_images, len(val))
        samples, seen, corrupt, grayscale = [], set(), set(), set()
        for position in range(len(val)):  # replacements of bad files can repeat an index: keep distinct ones
            sample = val[position]
            corrupt.update(sample["skipped_corrupt"])
            grayscale.update(sample["skipped_grayscale"])
            if sample["index"] not in seen:
                seen.add(sample["index"])
                samples.append(sample)
            if len(samples) == count:
                break
        validator = Validator(
            samples,
            out_dir=Path(args.output_dir) / "validation",
            skipped_corrupt=len(corrupt),
            skipped_grayscale=len(grayscale),
        )
    return train, validator


def make_train_loader(args: TrainingConfig, train_dataset: TrainDataset) -> torch.utils.data.DataLoader:
    """The training DataLoader (unprepared); order and augmentation come from the dataset's (seed, epoch, index)."""
    streaming = isinstance(train_dataset, StreamingColorizationDataset)
    if streaming and args.dataloader_num_workers:
        # datasets splits a stream's shards between workers, which would make the order depend on the worker count.
        print("note: --streaming reads in the main process; --dataloader_num_workers is ignored.")
    loader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.train_batch_size,
        shuffle=False,
        drop_last=True,
        collate_fn=collate,
        num_workers=0 if streaming else args.dataloader_num_workers,
        persistent_workers=False,
        # Its own generator: creating an iterator draws a worker seed, which must not advance the global RNG
        # (dropout masks, diffusion noise) differently in a resumed run. Augmentation is seeded per sample.
        generator=torch.Generator().manual_seed(args.seed),
    )
    if not streaming and len(loader) == 0:
        raise DataError(
            f"The training split has fewer images ({len(train_dataset)}) than one batch; lower --train_batch_size."
        )
    return loader


def training_length(
    args: TrainingConfig, loader: torch.utils.data.DataLoader, accelerator: Accelerator
) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps), per process after sharding; call before `prepare`."""
    if isinstance(loader.dataset, StreamingColorizationDataset):  # length unknown: --max_train_steps is required
        return args.max_train_steps, args.max_train_steps
    # drop_last=True: accelerate gives each process len // num_processes batches, and it also steps the
    # optimizer on an epoch's last (partial) accumulation window.
    shard_batches = len(loader) // accelerator.num_processes
    if shard_batches == 0:
        raise DataError(
            f"{len(loader)} batch(es) cannot feed {accelerator.num_processes} processes; lower --train_batch_size "
            "or the number of processes."
        )
    steps_per_epoch = math.ceil(shard_batches / args.gradient_accumulation_steps)
    return steps_per_epoch, args.max_train_steps or args.num_train_epochs * steps_per_epoch


def resume_if_asked(accelerator: Accelerator, args: TrainingConfig, state: TrainingState) -> None:
    """Load `--resume_from_checkpoint` (models, optimizers, RNG states and `state`) if one is given and exists."""
    if not args.resume_from_checkpoint:
        return
    output_dir = Path(args.output_dir)
    resume_path = resolve_resume_path(args.resume_from_checkpoint, output_dir)
    if resume_path is None:
        accelerator.print(f"No complete checkpoint in {output_dir} yet: starting a new run.")
        return
    accelerator.load_state(str(resume_path))
    accelerator.print(f"Resumed from {resume_path} at step {state.global_step} (epoch {state.epoch}).")


def epoch_batches(accelerator: Accelerator, loader: Any, train_dataset: TrainDataset, state: TrainingState) -> Any:
    """The prepared loader for `state.epoch`, without the batches this epoch already consumed (a resumed run)."""
    epoch_loader = loader
    if state.batches_seen_in_epoch:
        epoch_loader = accelerator.skip_first_batches(loader, state.batches_seen_in_epoch)
    # accelerate's loaders call dataset.set_epoch(their own counter) when iterated; a fresh skip-loader's
    # counter starts at 0, so the epoch (which picks the shuffle and augmentation) is set on the loader.
    train_dataset.set_epoch(state.epoch)
    if hasattr(epoch_loader, "set_epoch"):
        epoch_loader.set_epoch(state.epoch)
    return epoch_loader


def all_finite(accelerator: Accelerator, *losses: torch.Tensor) -> bool:
    """Agree across ranks, so every rank skips together (a lone skip would hang DDP's gradient sync)."""
    bad = torch.tensor([0.0 if all(torch.isfinite(x).all() for x in losses) else 1.0], device=accelerator.device)
    return float(accelerator.reduce(bad, reduction="sum").item()) == 0.0


def track_nonfinite(
    accelerator: Accelerator, args: TrainingConfig, state: TrainingState, progress: Any, *, skipped: bool
) -> None:
    """Count updates skipped for NaN/inf losses; stop with a sentence after `--max_nonfinite_steps` in a row."""
    if skipped:
        state.consecutive_nonfinite_steps += 1
        accelerator.print(
            f"step {state.global_step}: non-finite loss, update skipped ({state.consecutive_nonfinite_steps} in a row)"
        )
        if state.consecutive_nonfinite_steps >= args.max_nonfinite_steps:
            progress.close()  # end the bar's line, so the error is a line of its own
            raise TrainingError(
                f"{state.consecutive_nonfinite_steps} steps in a row had NaN/inf losses; lower "
                "--learning_rate, set --max_grad_norm, or use --mixed_precision no "
                "(the last checkpoint is intact)."
            )
    elif accelerator.sync_gradients:
        state.consecutive_nonfinite_steps = 0


class StepLog:
    """The progress bar plus running means of the logged losses and images/s, flushed every `every` steps.

    Each flush goes to the trackers, the bar's postfix and `state.history` (which the loss-curve plot reads).
    """

    def __init__(
        self, accelerator: Accelerator, state: TrainingState, max_steps: int, *, desc: str, every: int = 10
    ) -> None:
        self.accelerator, self.state, self.max_steps, self.every = accelerator, state, max_steps, every
        self.progress = tqdm(
            total=max_steps,
            initial=state.global_step,
            disable=not accelerator.is_local_main_process,
            desc=desc,
            dynamic_ncols=True,
        )
        self._reset()

    def _reset(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.images = 0
        self.started = time.perf_counter()

    def add(self, values: dict[str, float], *, images: int) -> None:
        """One micro-batch: its loss values and its image count on this rank."""
        for key, value in values.items():
            self.values.setdefault(key, []).append(value)
        self.images += images * self.accelerator.num_processes

    def stepped(self, lr: float) -> None:
        """After an optimizer step: advance the bar; every `every` steps (and at the last) log the means."""
        self.progress.update(1)
        step = self.state.global_step
        if step % self.every and step != self.max_steps:
            return
        means = {key: sum(values) / len(values) for key, values in self.values.items()}
        means["img_per_s"] = self.images / max(time.perf_counter() - self.started, 1e-9)
        means["lr"] = lr
        self.state.history.append({"step": step, **means})
        self.accelerator.log(means, step=step)
        self.progress.set_postfix({key: f"{value:.3g}" for key, value in means.items() if key != "lr"})
        self._reset()

    def close(self) -> None:
        self.progress.close()


def release(accelerator: Accelerator) -> None:
    """End training on every rank together: the main rank calls this after writing the output, the others wait.

    A rank that tears down its gloo process group while another is still working aborts at exit now and then
    ("terminate called without an active exception"), so nobody shuts down before the main rank is done.
    """
    accelerator.wait_for_everyone()
    accelerator.end_training()


def conclude(
    accelerator: Accelerator,
    args: TrainingConfig,
    state: TrainingState,
    model: torch.nn.Module,
    validator: Validator | None,
) -> str | None:
    """Gather every rank's final weights and skipped files; on the main rank check the ranks agree.

    The main rank writes logs/final_weights.txt and gets the data note for the model card; the other
    ranks end training and get None (only the main rank writes the output folder).
    """
    # equal digests: identical weights (the config is left out: only the main process records validation metrics)
    digests = gather_object([weights_digest(model, with_config=False)])
    corrupt = sorted({i for part in gather_object([state.skipped_corrupt]) for i in part})
    grayscale = sorted({i for part in gather_object([state.skipped_grayscale]) for i in part})
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        release(accelerator)  # waits there until the main rank has written the output
        return None
    if len(set(digests)) > 1:
        raise TrainingError(f"The {len(digests)} processes ended with different weights; distributed sync is broken.")
    logs = Path(args.output_dir) / args.logging_dir
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "final_weights.txt").write_text("\n".join(f"rank {r}: {d}" for r, d in enumerate(digests)) + "\n")
    # Training-split indices seen by any rank, plus the validation split's bad files (indices of another split).
    n_corrupt = len(corrupt) + (validator.skipped_corrupt if validator is not None else 0)
    n_grayscale = len(grayscale) + (validator.skipped_grayscale if validator is not None else 0)
    skipped_note = f"skipped {n_corrupt} unreadable image(s) and {n_grayscale} grayscale image(s)"
    card_data = getattr(model, "card_data", None)
    if args.composite_cutouts and isinstance(card_data, dict):
        # the model card's Training facts: composites were used, and from which cut-out set
        card_data["augmentation"] = describe(args.composite_cutouts, args.composite_probability)
    tqdm.write(f"Training finished at step {state.global_step}; {skipped_note}.")
    return skipped_note


def launch_command(argv: list[str] | None = None) -> str:
    """The command that reproduces this model, for its card: this run's arguments without resume flags."""
    kept: list[str] = []
    arguments = iter(sys.argv[1:] if argv is None else argv)
    for argument in arguments:
        if argument == "--resume_from_checkpoint":
            next(arguments, None)  # its value goes too
        elif not argument.startswith("--resume_from_checkpoint="):
            kept.append(argument)
    return "accelerate launch trainer/train.py " + " ".join(shlex.quote(a) for a in kept)


def prepare_push(accelerator: Accelerator, args: TrainingConfig) -> None:
    """With `--push_to_hub`, before anything is built: check the login and create the repo (main rank), so a bad
    token or repo name fails in seconds with a sentence instead of after training; every rank stops together."""
    if not args.push_to_hub:
        return
    problem = None
    if accelerator.is_main_process:
        from trainer.push import PushError, prepare_repo  # huggingface_hub's upload client: only when pushing

        try:
            url = prepare_repo(args.hub_model_id, private=args.hub_private, token=args.hub_token)
            tqdm.write(f"The model will be uploaded to {url} after training (logs included).")
        except PushError as error:
            problem = str(error)
    problem = broadcast_object_list([problem])[0]
    if problem:
        raise TrainingError(problem)


def push_if_asked(args: TrainingConfig) -> None:
    """Upload the output folder (with its logs) with `--push_to_hub`; a failed upload is a TrainingError (the folder
    is kept)."""
    if not args.push_to_hub:
        return
    from trainer.push import PushError, push_output  # huggingface_hub's upload client: only when pushing

    try:
        url = push_output(args.output_dir, args.hub_model_id, private=args.hub_private, token=args.hub_token)
    except PushError as error:
        raise TrainingError(str(error)) from error
    tqdm.write("uploaded: " + url)
