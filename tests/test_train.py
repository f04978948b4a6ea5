"""End-to-end trainer runs on tiny models and 32 px crops of real photos (a few steps each).

    .venv/bin/python -m pytest tests/test_train.py -q -x

Launch-level behaviour (accelerate launch without a config file, two DDP ranks on CPU, SIGKILL and
resume) runs the trainer as a subprocess; loop behaviour (exact resume, NaN guard, early stopping,
EMA, gradient accumulation, every baseline) runs `trainer.train.main` in-process, which is cheaper.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import (
    TRAIN_SCRIPT,
    accelerate_launch,
    final_digests,
    free_port,
    make_photo_folder,
    run_cli,
    run_trainer,
    trainer_env,
)

from models.hub import load_colorizer, load_model
from models.registry import create_model, list_models
from trainer.args import parse_args
from trainer.checkpoints import COMPLETE_MARKER, find_latest_checkpoint, list_checkpoints, resolve_resume_path

# No validation split: runs that only check the loop skip validation (metrics, grids and plots).
NO_VALIDATION = ["--val_fraction", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Eight colour photos as small JPEGs."""
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


def tiny(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--dataset", str(dataset), "--output_dir", str(output_dir), *extra]


def run_subprocess(command: list, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command],
        env=trainer_env(tmp_path / "hf-home", **env),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # nothing may be written into the repository
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def card_of(output_dir: Path) -> str:
    return (output_dir / "README.md").read_text()


# --- launch level ---------------------------------------------------------------------------------------
def test_accelerate_launch_writes_checkpoints_hub_output_and_counts_bad_images(tmp_path, photo):
    data = make_photo_folder(tmp_path / "photos", corrupt=True, grayscale=True)
    out = tmp_path / "out"
    command = accelerate_launch() + tiny(data, out, "--drop_grayscale", "--title", "Tiny test colorizer")
    result = run_subprocess(command, tmp_path)
    log = result.stdout + result.stderr

    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-3", "checkpoint-6"]
    assert not list(out.glob("*.tmp"))
    for name in ("config.json", "model.safetensors", "README.md", "samples.png", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert len(final_digests(out)) == 1  # no config file: one process
    # The truncated JPEG and the black-and-white photo were skipped, wherever the split put them.
    assert "skipped 1 unreadable image(s) and 1 grayscale image(s)" in log

    card = card_of(out)
    assert card.count("# Tiny test colorizer") == 1
    assert "registry variant `pix2pix_tiny`" in card
    assert f"- dataset: {data}" in card
    assert "- steps: 6" in card
    assert f"- command: `accelerate launch trainer/train.py --config tiny --dataset {data}" in card
    # --final_model best (the default): metrics and sample grid are those of the best validation step.
    best_step = int(re.search(r"Output = best validation weights \(step (\d+),", card).group(1))
    metrics_table = card.split("## Validation metrics", 1)[1].split("##", 1)[0]
    assert "ciede2000" in metrics_table and "| grayscale baseline |" in metrics_table
    assert f"| model (step {best_step}) |" in metrics_table
    assert "![samples](samples.png)" in card
    assert (out / "samples.png").read_bytes() == (out / "validation" / f"samples-{best_step:07d}.png").read_bytes()
    assert "skipped 1 unreadable image(s) and 1 grayscale image(s)" in card.split("## Notes", 1)[1]

    output, best = load_file(out / "model.safetensors"), load_file(out / "best" / "model.safetensors")
    assert output.keys() == best.keys() and all(torch.equal(output[k], best[k]) for k in output)
    gray_photo = photo("chelsea", 90).convert("L")
    colorized = load_colorizer(out).colorize(gray_photo)
    assert colorized.mode == "RGB" and colorized.size == gray_photo.size


@pytest.mark.slow  # several processes for seconds each; CI still runs it (-m 'not slow' skips it)
def test_two_process_ddp_ends_with_identical_weights_on_both_ranks(tmp_path, photos):
    out = tmp_path / "out"
    launch = accelerate_launch(
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),  # other DDP runs on this machine may hold the default port
    )
    steps = ["--max_train_steps", "4", "--validation_steps", "3", "--checkpointing_steps", "2"]
    command = launch + tiny(photos, out, *steps, "--final_model", "last")
    run_subprocess(command, tmp_path, ACCELERATE_USE_CPU="true")

    digests = final_digests(out)
    assert len(digests) == 2  # two ranks really ran
    assert digests[0] == digests[1]
    card = card_of(out)
    assert "- images seen: 16" in card  # 4 steps x batch 2 x 2 ranks
    assert "| model (step 4) |" in card  # the last weights, scored by the validation after the last step
    assert sorted(p.name for p in (out / "checkpoint-4").glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]


@pytest.mark.slow  # several processes for seconds each; CI still runs it (-m 'not slow' skips it)
def test_sigkill_then_resume_from_latest_finishes_and_ignores_half_written_checkpoints(tmp_path, photos):
    out = tmp_path / "out"
    args = tiny(photos, out, *NO_VALIDATION, "--checkpointing_steps", "2")
    args += ["--checkpoints_total_limit", "2", "--final_model", "last"]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(  # a step budget it cannot finish before the kill, however fast the machine
            [sys.executable, str(TRAIN_SCRIPT), *args, "--max_train_steps", "100000"],
            env=trainer_env(tmp_path / "hf-home"),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            deadline = time.monotonic() + 300  # a guard against a hang, not a speed bound
            # any complete checkpoint from step 4 on (older ones are pruned by the total limit)
            while not any(int(p.name.split("-")[1]) >= 4 for p in list_checkpoints(out)):
                assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint from step 4 on appeared"
                time.sleep(0.02)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    latest = find_latest_checkpoint(out)
    step = int(latest.name.split("-")[1])
    assert step >= 4
    target = step + 6
    # Killed between writing the marker and the rename; and a folder without a marker: neither is `latest`.
    for half_written in (out / f"checkpoint-{step + 2}.tmp", out / f"checkpoint-{step + 4}"):
        shutil.copytree(latest, half_written)
    (out / f"checkpoint-{step + 4}" / COMPLETE_MARKER).unlink()
    (out / f"checkpoint-{step + 2}.tmp" / "model.safetensors").write_bytes(b"half a file")

    resume = [*args, "--max_train_steps", str(target), "--resume_from_checkpoint", "latest"]
    result = run_subprocess([sys.executable, TRAIN_SCRIPT, *resume], tmp_path)
    log = result.stdout + result.stderr
    assert f"Resumed from {latest} at step {step}" in log
    assert f"Training finished at step {target}" in log
    assert f"- steps: {target}" in card_of(out)
    assert [p.name for p in list_checkpoints(out)] == [f"checkpoint-{target - 2}", f"checkpoint-{target}"]
    assert not list(out.glob("checkpoint-*.tmp"))  # the next save cleared the stale staging folder


# --- loop behaviour (in-process) ----------------------------------------------------------------------------
def test_resume_from_latest_equals_an_uninterrupted_run(tmp_path, photos):
    # EMA, gradient accumulation and a discriminator that starts mid-run all have state to restore.
    extra = [*NO_VALIDATION, "--final_model", "last", "--ema_decay", "0.9", "--gradient_accumulation_steps", "2"]
    extra += ["--max_train_steps", "5"]
    whole = run_trainer(tiny(photos, tmp_path / "whole", *extra))
    shutil.copytree(whole / "checkpoint-3", tmp_path / "resumed" / "checkpoint-3")
    resumed = run_trainer(tiny(photos, tmp_path / "resumed", *extra, "--resume_from_checkpoint", "latest"))
    assert final_digests(resumed) == final_digests(whole)
    assert "- steps: 5" in card_of(resumed)


def test_streaming_trains_and_resumes_exactly(tmp_path, photos, capsys):
    # --streaming reads a datasets.IterableDataset; a stream has no length, so the step budget is required.
    assert run_cli(tiny(photos, tmp_path / "no-budget", *NO_VALIDATION, "--streaming", "--max_train_steps", "0")) == 1
    assert "--streaming needs --max_train_steps" in capsys.readouterr().err
    extra = [*NO_VALIDATION, "--streaming", "--final_model", "last", "--max_train_steps", "6"]
    whole = run_trainer(tiny(photos, tmp_path / "whole", *extra))
    shutil.copytree(whole / "checkpoint-3", tmp_path / "resumed" / "checkpoint-3")
    resumed = run_trainer(tiny(photos, tmp_path / "resumed", *extra, "--resume_from_checkpoint", "latest"))
    assert final_digests(resumed) == final_digests(whole)
    assert "- steps: 6" in card_of(resumed)


def test_a_leftover_best_model_from_an_earlier_run_is_not_the_output(tmp_path, photos):
    out = tmp_path / "out"
    create_model("unet_tiny").save_pretrained(out / "best")  # an earlier run's best/, another architecture
    run_trainer(tiny(photos, out, *NO_VALIDATION, "--max_train_steps", "2"))
    assert json.loads((out / "config.json").read_text())["architecture"] == "UNetGenerator"
    assert "Output = last weights" in card_of(out)


def test_an_epoch_counts_the_last_partial_accumulation_window(tmp_path, photos):
    # 8 photos, batch 2 -> 4 batches; accumulation 3 -> accelerate steps after batch 3 and at the epoch's end: 2.
    out = run_trainer(
        tiny(photos, tmp_path / "out", *NO_VALIDATION, "--max_train_steps", "0", "--num_train_epochs", "2",
             "--gradient_accumulation_steps", "3")
    )  # fmt: skip
    assert "- steps: 4" in card_of(out)


def test_nonfinite_losses_skip_the_update_then_stop_with_a_clear_message(tmp_path, photos, capsys):
    # An infinite learning rate turns the weights into NaN after the first update; every later loss is NaN.
    out = tmp_path / "out"
    argv = tiny(photos, out, *NO_VALIDATION, "--learning_rate", "inf", "--max_nonfinite_steps", "2")
    argv += ["--max_train_steps", "10", "--checkpointing_steps", "1"]
    assert run_cli(argv) == 1
    captured = capsys.readouterr()
    assert "non-finite loss, update skipped (1 in a row)" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "2 steps in a row had NaN/inf losses" in errors[0]
    assert "Traceback" not in captured.err
    assert find_latest_checkpoint(out).name == "checkpoint-2"  # stopped right away, checkpoints kept
    assert not (out / "model.safetensors").exists()  # no NaN model published as the output


def test_early_stopping_stops_after_patience_validations_without_improvement(tmp_path, photos):
    # Learning rate 0 and no batch statistics: every validation scores exactly like the first.
    extra = ["--model_overrides", '{"norm": "instance"}', "--discriminator", "none", "--learning_rate", "0"]
    extra += ["--validation_steps", "1", "--early_stopping_patience", "1", "--max_train_steps", "8"]
    out = run_trainer(tiny(photos, tmp_path / "out", *extra, "--checkpointing_steps", "0"))
    card = card_of(out)
    assert "- steps: 2" in card
    assert "Output = best validation weights (step 1," in card


def test_ema_output_is_the_exponential_average_of_the_generator(tmp_path, photos):
    extra = [*NO_VALIDATION, "--ema_decay", "0.5", "--final_model", "last", "--max_train_steps", "3"]
    out = run_trainer(tiny(photos, tmp_path / "out", *extra, "--checkpointing_steps", "1"))
    steps = [load_file(out / f"checkpoint-{s}" / "model.safetensors") for s in (1, 2, 3)]
    output = load_file(out / "model.safetensors")
    assert output.keys() == steps[0].keys()
    for key, value in output.items():
        if value.is_floating_point():  # parameters and BN running statistics (use_buffers)
            expected = 0.25 * steps[0][key] + 0.25 * steps[1][key] + 0.5 * steps[2][key]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(output[k], steps[2][k]) for k in output)


def test_gradient_accumulation_matches_one_larger_batch(tmp_path, photos):
    # Instance norm: no batch statistics, so 2 micro-batches of 1 must give the gradient of one batch of 2.
    common = [*NO_VALIDATION, "--model_overrides", '{"norm": "instance"}', "--discriminator", "none"]
    common += ["--max_train_steps", "1", "--checkpointing_steps", "1"]
    batch = run_trainer(tiny(photos, tmp_path / "batch", *common, "--train_batch_size", "2"))
    accumulated = run_trainer(
        tiny(photos, tmp_path / "acc", *common, "--train_batch_size", "1", "--gradient_accumulation_steps", "2")
    )

    def first_moments(output_dir: Path) -> list[torch.Tensor]:
        # Adam's first moment after one step is (1 - beta1) x the gradient.
        state = torch.load(output_dir / "checkpoint-1" / "optimizer.bin", weights_only=True)["state"]
        return [state[i]["exp_avg"] for i in sorted(state)]

    for expected, actual in zip(first_moments(batch), first_moments(accumulated), strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-8)
    assert "- images seen: 2" in card_of(accumulated)


@pytest.mark.parametrize("name", list_models("*_tiny"))
def test_every_baseline_trains(tmp_path, photos, name):
    start = create_model(name)
    start.save_pretrained(tmp_path / "start")
    extra = [*NO_VALIDATION, "--model", name, "--init_from", str(tmp_path / "start")]
    if name.startswith("pix2pix"):  # its discriminator from the first step (a baseline trains none: no GAN flags)
        extra += ["--d_start_step", "0"]
    out = run_trainer(tiny(photos, tmp_path / "out", *extra, "--max_train_steps", "2", "--checkpointing_steps", "0"))
    trained = load_model(out)
    assert type(trained) is type(start)
    before, after = dict(start.named_parameters()), dict(trained.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter moved"
    assert "- steps: 2" in card_of(out)


# --- arguments and checkpoints ------------------------------------------------------------------------
def test_config_preset_with_command_line_overrides(tmp_path):
    args = parse_args(["--config", "tiny", "--dataset", "photos", "--model", "unet_tiny", "--max_train_steps", "2"])
    assert (args.model, args.max_train_steps) == ("unet_tiny", 2)  # the command line wins
    assert (args.resolution, args.d_width, args.report_to) == (32, 8, "none")  # the rest from the preset
    preset = tmp_path / "mine.yaml"
    preset.write_text("resolution: 64\nlearning_rate: 0.001\n")
    args = parse_args(["--config", str(preset), "--dataset", "photos", "--resolution", "48"])
    assert (args.resolution, args.learning_rate) == (48, 0.001)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
        (["--push_to_hub", "--hub_model_id", "no-slash"], "is not a repo id of the form USER/NAME"),
        (["--losses", "l1,perceptual:0.1"], "the perceptual loss needs ImageNet VGG16 weights"),
        (["--crop_scale", "0.8", "0.2"], "--crop_scale must satisfy"),
    ],
)
def test_argument_problems_are_one_sentence_before_training(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--dataset", str(tmp_path), "--output_dir", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]


def test_unknown_preset_and_unknown_preset_keys_are_reported(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"presets: .*tiny"):
        parse_args(["--config", "no-such-preset", "--dataset", "photos"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("resolutoin: 64\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(bad), "--dataset", "photos"])
    assert "sets unknown options ['resolutoin']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resolution", "40"], "--resolution 40 is not a multiple of 16"),
        (["--train_batch_size", "64"], "fewer images"),
    ],
)
def test_setup_problems_fail_with_one_sentence_and_write_nothing(tmp_path, photos, capsys, extra, message):
    out = tmp_path / "out"
    assert run_cli(tiny(photos, out, *NO_VALIDATION, *extra)) == 1
    err = capsys.readouterr().err
    assert "error: " in err and message in err and "Traceback" not in err
    assert not list_checkpoints(out) and not (out / "model.safetensors").exists()


def test_missing_dataset_is_one_sentence(tmp_path, capsys):
    assert run_cli(tiny(tmp_path / "no-such-folder", tmp_path / "out")) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Could not load dataset" in errors[0]


def test_half_written_checkpoints_are_never_latest(tmp_path):
    assert resolve_resume_path("latest", tmp_path) is None  # nothing yet: a fresh start
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / COMPLETE_MARKER).write_text(f"{step}\n")
    staging = tmp_path / "checkpoint-8.tmp"
    staging.mkdir()
    (staging / COMPLETE_MARKER).write_text("8\n")
    assert resolve_resume_path("latest", tmp_path) == tmp_path / "checkpoint-4"
    with pytest.raises(ValueError, match="incomplete checkpoint"):
        resolve_resume_path(str(tmp_path / "checkpoint-6"), tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        resolve_resume_path(str(tmp_path / "checkpoint-10"), tmp_path)
