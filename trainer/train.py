"""Train a ColorLab colorizer with Hugging Face Accelerate.

    accelerate launch trainer/train.py --config tiny --dataset path/to/photos --output_dir outputs/tiny
    python trainer/train.py --model unet --losses l1 --dataset user/photos --output_dir outputs/unet
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \
        --mixed_precision no --dynamo_backend no trainer/train.py ...   # two real DDP ranks on CPU

pix2pix models train against a conditional PatchGAN (D sees L and ab); the discriminator can start
late (`--d_start_step` / `--d_start_epoch`: the generator first learns colours from the
reconstruction loss alone, which keeps D from winning early). Regression baselines train with the
reconstruction losses only. Checkpoints hold everything needed to continue exactly
(`--resume_from_checkpoint latest`); the output folder is a Hub-format model with a filled-in card.
`--model controlnet --base_model tiny|PATH|HUB_ID` trains the diffusion colorizer instead
(trainer/train_controlnet.py). This script holds the GAN family's setup and its step body (`gan_step`:
a D step, then a G step); the epoch/step loop and the finishing sequence that both families run live in
trainer/run.py, the pieces under them (data, resume, the NaN/inf guard, logging) in trainer/loop.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (accelerate launch trainer/train.py): make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from corpus.dataset_sources import DataError
from models.ab_classes import AbClassHead
from models.base import ColorizationNet
from models.grow import with_overrides
from models.hub import load_model, save_model_atomically
from models.hub_files import WEIGHTS_NAME
from models.pipeline import NetworkColorizer
from models.pix2pix import PatchDiscriminator
from models.registry import create_model
from models.widget_example import write_widget_example
from trainer.args import parse_args
from trainer.checkpoints import TrainingState
from trainer.config import AnyTrainingConfig, ControlNetTrainingConfig, GANTrainingConfig
from trainer.data import prior_batches
from trainer.hint_training import (
    HINTED_PREFIX,
    make_hint_model,
    served_ab,
    served_propagation,
    training_hint_maps,
    validation_hint_maps,
)
from trainer.loop import (
    TrainingError,
    all_finite,
    build_datasets,
    launch_command,
    make_train_loader,
    native_working_size,
    prepare_push,
    resume_if_asked,
    training_length,
)
from trainer.losses import GANLoss, ReconstructionLoss
from trainer.preflight import (
    OutputNotWritable,
    as_write_error,
    check_colour_photos,
    check_output_dir,
    describe_write_error,
    use_validation_split,
)
from trainer.run import Validation, card_validation, finish_training, train_loop
from trainer.schedule import build_scheduler
from trainer.tracking import create_accelerator, print_run_summary, start_trackers
from trainer.validation import Validator


def build_generator(args: GANTrainingConfig) -> ColorizationNet:
    if args.init_from:
        model = load_model(args.init_from)
        # The starting weights' card facts (title, notes, sweep, metrics) describe another model: keep only which
        # variant it is and where this run started from; this run writes its own facts.
        model.card_data = {"variant": model.card_data.get("variant", args.model), "init_from": args.init_from}
        # overrides grow the trained network (e.g. a global-context block) and keep every weight it has
        return make_hint_model(with_overrides(model, args.model_overrides), args)
    return make_hint_model(create_model(args.model, **args.model_overrides), args)


def main(args: AnyTrainingConfig) -> Path:
    output_dir = Path(args.output_dir)
    accelerator = create_accelerator(args)  # mixed precision: the flag, else accelerate launch / accelerate config
    set_seed(args.seed)
    check_output_dir(output_dir)  # an unwritable folder fails now, with a sentence, not at the first save
    prepare_push(accelerator, args)  # with --push_to_hub: the login and the repo are checked before any training
    validation_note = use_validation_split(args)
    if validation_note and accelerator.is_main_process:
        tqdm.write(validation_note)
    if isinstance(args, ControlNetTrainingConfig):
        from trainer.train_controlnet import train_controlnet  # diffusers is heavy: only for this family

        return train_controlnet(args, accelerator)

    generator = build_generator(args)
    discriminator = None
    if args.trains_discriminator:
        discriminator = PatchDiscriminator(
            base_width=args.d_width, n_layers=args.d_layers, norm=args.d_norm, use_spectral_norm=args.d_spectral_norm
        )
    multiple = generator.size_multiple
    if args.resolution % multiple:
        raise TrainingError(
            f"--resolution {args.resolution} is not a multiple of {multiple}, which {args.model} needs; "
            f"use e.g. {max(multiple, args.resolution // multiple * multiple)}."
        )
    if args.max_resolution and args.max_resolution % multiple:
        raise TrainingError(
            f"--max_resolution {args.max_resolution} is not a multiple of {multiple}, which {args.model} needs; "
            f"use e.g. {max(multiple, args.max_resolution // multiple * multiple)}."
        )
    generator.colorlab.update(
        kind="colour classes" if getattr(generator, "ab_classes", False) else "regression",
        native_working_size=native_working_size(args, multiple),
        trained_resolution=[args.resolution, args.max_resolution or args.resolution],
    )
    if args.trains_discriminator:
        generator.colorlab["kind"] += " + GAN"
    if generator.takes_hints:
        generator.colorlab["kind"] += " + colour hints"
    criterion = ReconstructionLoss.from_spec(args.losses, perceptual_weights=args.perceptual_weights)
    gan_loss = GANLoss(args.gan_mode, real_label=args.real_label)
    if args.channels_last:
        generator = generator.to(memory_format=torch.channels_last)

    train_dataset, validator = build_datasets(args, multiple)
    check_colour_photos(train_dataset, args)  # mostly black-and-white photos: refused unless --allow_grayscale
    loader = make_train_loader(args, train_dataset)
    betas = (args.adam_beta1, args.adam_beta2)
    optimizer_g = torch.optim.Adam(
        generator.parameters(), lr=args.learning_rate, betas=betas, weight_decay=args.adam_weight_decay
    )
    optimizer_d = None
    if discriminator is not None:
        optimizer_d = torch.optim.Adam(
            discriminator.parameters(), lr=args.d_learning_rate or args.learning_rate, betas=betas
        )

    # Step counts are per process after sharding; schedulers count every process's steps (as in diffusers).
    steps_per_epoch, max_steps = training_length(args, loader, accelerator)
    examples = None if args.streaming else len(train_dataset)
    print_run_summary(accelerator, args, examples=examples, steps_per_epoch=steps_per_epoch, max_steps=max_steps)
    d_start = max(args.d_start_step, args.d_start_epoch * steps_per_epoch)
    scheduler_g = build_scheduler(
        args.lr_scheduler,
        optimizer_g,
        warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        total_steps=max_steps * accelerator.num_processes,
    )
    prepared = accelerator.prepare(generator, optimizer_g, scheduler_g, loader)
    generator, optimizer_g, scheduler_g, loader = prepared
    scheduler_d = None
    if discriminator is not None:
        scheduler_d = build_scheduler(
            args.lr_scheduler,
            optimizer_d,
            warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
            total_steps=max_steps * accelerator.num_processes,
        )
        discriminator, optimizer_d, scheduler_d = accelerator.prepare(discriminator, optimizer_d, scheduler_d)

    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    ema = None
    if args.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(
            accelerator.unwrap_model(generator), multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True
        )
        accelerator.register_for_checkpointing(ema)

    resume_if_asked(accelerator, args, state)

    start_trackers(accelerator, args)
    unwrapped_d = accelerator.unwrap_model(discriminator) if discriminator is not None else None
    unwrapped_g = accelerator.unwrap_model(generator)
    if criterion.needs_logits:
        if not getattr(unwrapped_g, "ab_classes", False):
            raise TrainingError(
                f"--losses {args.losses} needs a colorizer that predicts colour classes; build it with "
                "--model_overrides '{\"ab_classes\": true}' (unet and resunet support it)."
            )
        criterion.fit_class_weights(prior_batches(train_dataset), mix=args.class_rebalancing)
        unwrapped_g.set_class_weights(criterion.class_weights)  # saved in config.json for prior-corrected decoding

    def evaluation_model() -> torch.nn.Module:
        return ema.module if ema is not None else accelerator.unwrap_model(generator)

    def predict(l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        model = evaluation_model()
        was_training = model.training
        model.eval()
        try:
            if hint_map is None:
                return model(l_norm.to(accelerator.device))
            l_norm, hint_map = l_norm.to(accelerator.device), hint_map.to(accelerator.device)
            return served_ab(l_norm, model(l_norm, hint_map), hint_map, propagation)
        finally:
            model.train(was_training)

    takes_hints = unwrapped_g.takes_hints
    propagation = served_propagation(unwrapped_g, args)  # --hint_loss served: the loss sees what users get
    validation = None
    if validator is not None:
        val_hint_maps = validation_hint_maps(validator.ab_norm, seed=args.seed) if takes_hints else None

        def hinted_metrics() -> dict[str, float]:
            """A hint model is also scored on how well it follows 10 simulated points."""
            hinted = validator.metrics_with_hints(predict, val_hint_maps)
            return {HINTED_PREFIX + name: value for name, value in hinted.items()}

        def save_best(metrics: dict[str, float]) -> None:
            best = evaluation_model()
            best.card_data.update(
                metrics={f"model (step {state.global_step})": metrics, "grayscale baseline": validator.baseline}
            )
            save_model_atomically(best, output_dir / "best")

        validation = Validation(
            validator, predict, extra_metrics=hinted_metrics if takes_hints else None, save_best=save_best
        )

    def gan_step(batch: dict[str, Any]) -> tuple[dict[str, float], bool]:
        """One micro-batch: D on real and fake patches (once it has started), then G on reconstruction (+ GAN)."""
        l_norm, ab_norm = batch["L"], batch["ab"]
        if args.channels_last:
            l_norm = l_norm.contiguous(memory_format=torch.channels_last)
        # a hint model sees points drawn from the true colours (seeded by step: an exact resume redraws them)
        inputs = (l_norm,)
        if takes_hints:
            hint_map = training_hint_maps(
                ab_norm, seed=args.seed, step=state.global_step, rank=accelerator.process_index
            )
            inputs = (l_norm, hint_map)
        d_active = discriminator is not None and state.global_step >= d_start
        with accelerator.autocast():
            if criterion.needs_logits:
                logits = generator(*inputs, return_logits=True)
                fake_ab = AbClassHead.decode(logits, temperature=unwrapped_g.temperature, size=l_norm.shape[-2:])
            else:
                logits, fake_ab = None, generator(*inputs)
                if takes_hints:
                    fake_ab = served_ab(l_norm, fake_ab, hint_map, propagation)
            reconstruction, parts = criterion(l_norm, fake_ab.float(), ab_norm, logits=logits)
        logs = {k: float(v.detach()) for k, v in parts.items()}
        skipped = False
        if d_active:
            with accelerator.autocast():  # one D pass over real and fake keeps DDP to one forward/backward
                logits = discriminator(torch.cat([l_norm, l_norm]), torch.cat([ab_norm, fake_ab.detach()]))
                real_logits, fake_logits = logits.chunk(2)
                d_loss = 0.5 * (
                    gan_loss(real_logits, target_is_real=True) + gan_loss(fake_logits, target_is_real=False)
                )
            if all_finite(accelerator, d_loss):
                accelerator.backward(d_loss)
                if args.max_grad_norm and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(discriminator.parameters(), args.max_grad_norm)
                optimizer_d.step()
                scheduler_d.step()
                optimizer_d.zero_grad(set_to_none=True)
                logs["d_loss"] = float(d_loss.detach())
            else:
                optimizer_d.zero_grad(set_to_none=True)
                skipped = True
            # G's adversarial term goes through the bare module with frozen weights: no DDP pass, no D grads.
            unwrapped_d.requires_grad_(False)
            with accelerator.autocast():
                adversarial = gan_loss(unwrapped_d(l_norm, fake_ab), target_is_real=True, for_discriminator=False)
            unwrapped_d.requires_grad_(True)
            logs["g_adv"] = float(adversarial.detach())
            g_loss = args.lambda_l1 * reconstruction + args.lambda_gan * adversarial
        else:
            g_loss = reconstruction
        if all_finite(accelerator, g_loss) and not skipped:
            accelerator.backward(g_loss)
            if args.max_grad_norm and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(generator.parameters(), args.max_grad_norm)
            optimizer_g.step()
            scheduler_g.step()
            logs["g_loss"] = float(g_loss.detach())
        else:
            skipped = True
        optimizer_g.zero_grad(set_to_none=True)
        return logs, skipped

    def update_ema() -> None:
        ema.update_parameters(accelerator.unwrap_model(generator))

    def share_buffers() -> None:
        if accelerator.num_processes > 1:
            # DDP sends rank 0's buffers (batch-norm running statistics) at the start of each forward, so after the
            # last forward every rank holds its own; rank 0's are the ones saved, so make them everyone's.
            for buffer in evaluation_model().buffers():
                torch.distributed.broadcast(buffer, src=0)

    train_loop(
        accelerator,
        args,
        state,
        loader=loader,
        train_dataset=train_dataset,
        max_steps=max_steps,
        modules=[module for module in (generator, discriminator) if module is not None],
        step=gan_step,
        learning_rate=lambda: scheduler_g.get_last_lr()[0],
        validation=validation,
        desc="training",
        after_step=update_ema if ema is not None else None,
        before_final_validation=share_buffers,
    )
    last_model = evaluation_model()
    return finish_training(
        accelerator,
        args,
        state,
        last_model,
        validator,
        write_output=lambda skipped_note: write_output(args, state, last_model, validator, skipped_note),
        what="colorizer",
    )


def write_output(
    args: GANTrainingConfig,
    state: TrainingState,
    last_model: ColorizationNet,
    validator: Validator | None,
    skipped_note: str,
) -> None:
    """The main rank's output folder: the best (or last) generator with its card, sample grid and widget example."""
    output_dir = Path(args.output_dir)
    model = last_model
    best_dir = output_dir / "best"
    # Only a best/ this run validated (state.best_step): a leftover from an earlier run in the same folder is not ours.
    if args.final_model == "best" and state.best_step is not None and (best_dir / WEIGHTS_NAME).is_file():
        model = load_model(best_dir)
        # card_data is not saved with the weights: keep what the trainer knew about this generator (variant, init).
        model.card_data = {**last_model.card_data, **model.card_data}
    output_step = state.global_step if model is last_model else state.best_step
    if args.title:
        model.card_data["title"] = args.title
    model.card_data.update(
        dataset=args.dataset,
        steps=state.global_step,
        images_seen=state.images_seen,
        resolution=f"{args.resolution}-{args.max_resolution} px (multi-scale)"
        if args.max_resolution and args.max_resolution != args.resolution
        else f"{args.resolution} px",
        losses=args.losses
        + (
            f" + {args.lambda_gan} x {args.gan_mode} GAN (x{args.lambda_l1} on reconstruction)"
            if args.trains_discriminator
            else ""
        ),
        command=launch_command(),
        notes=f"Data: {skipped_note}. Output = {'best validation' if model is not last_model else 'last'} weights"
        + (
            f" (step {state.best_step}, {args.early_stopping_metric} {state.best_metric:.4g})."
            if model is not last_model
            else "."
        ),
    )
    if model.takes_hints:  # what its hinted validation metrics scored (models.model_card labels them by it)
        model.card_data["hint_loss"] = args.hint_loss
    model.card_data.pop("metrics", None)  # validation labels the live generator's with the best step, not ours
    # The metrics and sample grid of the validation at the step whose weights are saved.
    label = f"model (step {output_step})"
    card_validation(model.card_data, state, validator, output_dir, step=output_step, label=label)
    # The card's widget example (the Hub shows it on the model page): a small gray photo and this model's colouring.
    device = next(model.parameters()).device
    model.card_data["widget_example"] = write_widget_example(NetworkColorizer(model, device=device), output_dir)
    save_model_atomically(model, output_dir, dtype=torch.float16 if args.save_dtype == "fp16" else None)


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        main(args)
    except (TrainingError, DataError, ValueError, OutputNotWritable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # disk full, read-only or forbidden while saving: say so, the checkpoints are intact
        write_error = as_write_error(error)
        if write_error is None:
            raise
        print(f"error: {describe_write_error(write_error, args.output_dir)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
