"""Learning-rate schedules (diffusers' get_scheduler behind trainer.schedule): shapes, names, exact resume."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from train_support import final_digests, make_photo_folder, run_trainer

from trainer.schedule import SCHEDULER_NAMES, build_scheduler

BASE_LR = 0.1


def _rates(name: str, *, warmup: int, total: int, steps: int) -> list[float]:
    """The learning rate used at each of `steps` optimizer steps."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    scheduler = build_scheduler(name, optimizer, warmup_steps=warmup, total_steps=total)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_rises_linearly_to_the_full_rate_then_each_schedule_keeps_its_shape() -> None:
    warmup, total = 4, 12
    for name in ("constant_with_warmup", "linear", "cosine"):
        rates = _rates(name, warmup=warmup, total=total, steps=total)
        assert rates[:warmup] == pytest.approx([BASE_LR * step / warmup for step in range(warmup)])
        assert rates[warmup] == pytest.approx(BASE_LR)
    assert _rates("constant_with_warmup", warmup=warmup, total=total, steps=total)[warmup:] == pytest.approx(
        [BASE_LR] * (total - warmup)
    )
    linear = _rates("linear", warmup=warmup, total=total, steps=total + 1)
    decay = range(warmup, total + 1)
    assert linear[warmup:] == pytest.approx([BASE_LR * (total - s) / (total - warmup) for s in decay])
    cosine = _rates("cosine", warmup=warmup, total=total, steps=total + 1)
    middle = warmup + (total - warmup) // 2
    assert cosine[middle] == pytest.approx(BASE_LR / 2)
    assert cosine[total] == pytest.approx(0.0, abs=1e-12)
    assert all(later <= earlier for earlier, later in zip(cosine[warmup:], cosine[warmup + 1 :], strict=False))
    expected = [BASE_LR * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) for s in decay]
    assert cosine[warmup:] == pytest.approx(expected, abs=1e-12)


def test_constant_ignores_the_warmup_and_short_runs_still_reach_the_full_rate() -> None:
    assert _rates("constant", warmup=5, total=10, steps=10) == pytest.approx([BASE_LR] * 10)
    # total <= warmup (a preset's warm-up on a smoke-test run): the rate still peaks, never goes negative.
    rates = _rates("linear", warmup=4, total=2, steps=6)
    assert max(rates) == pytest.approx(BASE_LR) and min(rates) >= 0.0


def test_unknown_names_are_refused_with_the_choices() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    with pytest.raises(ValueError, match="choose constant, constant_with_warmup, linear or cosine"):
        build_scheduler("cosine_with_restarts", optimizer, warmup_steps=0, total_steps=10)
    assert SCHEDULER_NAMES == ("constant", "constant_with_warmup", "linear", "cosine")


def test_a_restored_scheduler_continues_with_the_same_rates() -> None:
    """What a checkpoint does: state_dict after k steps, load into a fresh scheduler, continue."""
    whole = _rates("cosine", warmup=3, total=10, steps=10)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    first = build_scheduler("cosine", optimizer, warmup_steps=3, total_steps=10)
    for _ in range(5):
        optimizer.step()
        first.step()
    saved_optimizer, saved_scheduler = optimizer.state_dict(), first.state_dict()
    resumed_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    resumed = build_scheduler("cosine", resumed_optimizer, warmup_steps=3, total_steps=10)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    rest = []
    for _ in range(5):
        rest.append(resumed_optimizer.param_groups[0]["lr"])
        resumed_optimizer.step()
        resumed.step()
    assert rest == pytest.approx(whole[5:], rel=0, abs=0)


def test_trainer_resumes_a_warmup_cosine_run_exactly(tmp_path: Path) -> None:
    photos = make_photo_folder(tmp_path / "photos")
    argv = ["--config", "tiny", "--dataset", str(photos), "--val_fraction", "0", "--final_model", "last"]
    argv += ["--max_train_steps", "5", "--lr_scheduler", "cosine", "--lr_warmup_steps", "2"]
    whole = run_trainer([*argv, "--output_dir", str(tmp_path / "whole")])
    shutil.copytree(whole / "checkpoint-3", tmp_path / "resumed" / "checkpoint-3")
    resumed = run_trainer([*argv, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", "latest"])
    assert final_digests(resumed) == final_digests(whole)


def test_the_trainers_learning_rate_at_every_step_is_diffusers_get_scheduler(tmp_path: Path) -> None:
    """No schedule of our own: the rate the trainer logs after each step is what get_scheduler gives there."""
    from diffusers.optimization import get_scheduler

    photos = make_photo_folder(tmp_path / "photos")
    argv = ["--config", "tiny", "--dataset", str(photos), "--val_fraction", "0", "--output_dir", str(tmp_path / "out")]
    argv += ["--max_train_steps", "6", "--lr_scheduler", "cosine", "--lr_warmup_steps", "2", "--logging_steps", "1"]
    argv += ["--learning_rate", str(BASE_LR), "--checkpointing_steps", "6"]
    out = run_trainer(argv)
    history = torch.load(out / "checkpoint-6" / "custom_checkpoint_0.pkl", weights_only=False)["history"]
    logged = [row["lr"] for row in history if "lr" in row]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    reference = get_scheduler("cosine", optimizer, num_warmup_steps=2, num_training_steps=6)
    expected = []
    for _ in range(6):
        optimizer.step()
        reference.step()
        expected.append(reference.get_last_lr()[0])
    assert logged == expected  # exactly: the same LambdaLR arithmetic
