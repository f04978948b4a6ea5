"""The trainer's command line: grouped --help with defaults and a help text on every flag, and choices refused
before anything is built, whether they were typed or came from a YAML preset.

    .venv/bin/python -m pytest tests/test_train_args.py -q -x
"""

from __future__ import annotations

import argparse
import importlib.util
import re

import pytest

import trainer.args
from trainer.args import CONFIG_DIR, _build_parser, parse_args

GROUP_TITLES = [
    "model",
    "data",
    "optimisation",
    "GAN (pix2pix models)",
    "diffusion (--model controlnet)",
    "validation, logging and checkpoints",
    "Hugging Face Hub",
]


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error:" in line]


def _refused(capsys, argv: list[str]) -> str:
    """Parse `argv`; it must exit with argparse's status 2 and exactly one error line, which is returned."""
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    errors = _error_lines(capsys)
    assert len(errors) == 1, errors
    return errors[0]


def test_every_flag_has_a_help_text_and_belongs_to_a_named_group() -> None:
    parser = _build_parser()
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, f"{action.option_strings} has no help text"
    titles = [group.title for group in parser._action_groups]
    assert titles[2:] == GROUP_TITLES  # after argparse's positionals/options, which hold only --help and --config
    general = next(group for group in parser._action_groups if group.title == "options")
    assert [action.dest for action in general._group_actions] == ["help", "config"]


def test_help_is_grouped_and_shows_defaults(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for title in GROUP_TITLES:
        assert f"\n{title}:\n" in text
    flat = " ".join(text.split())  # argparse wraps lines
    assert "--resolution RESOLUTION Side of the square training crops, in pixels. (default: 256)" in flat
    assert "(default: ciede2000)" in flat and "(default: 10)" in flat  # --early_stopping_metric, --logging_steps


def test_help_after_a_preset_shows_the_presets_values(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--config", "tiny", "--help"])
    flat = " ".join(capsys.readouterr().out.split())
    assert "Side of the square training crops, in pixels. (default: 32)" in flat  # tiny.yaml's resolution


@pytest.mark.parametrize("preset", sorted(path.stem for path in CONFIG_DIR.glob("*.yaml")))
def test_every_preset_parses(preset: str) -> None:
    args = parse_args(["--config", preset, "--dataset", "photos"])
    assert args.config == preset


def test_flags_are_spelled_with_underscores_and_accept_dashes() -> None:
    parser = _build_parser()
    assert not [flag for action in parser._actions for flag in action.option_strings if "-" in flag[2:]]
    args = parse_args(["--dataset", "photos", "--train-batch-size", "3", "--max_train_steps", "7"])
    assert (args.train_batch_size, args.max_train_steps) == (3, 7)


def test_mixed_precision_defaults_to_the_launchers_setting() -> None:
    # None lets Accelerator read `accelerate launch --mixed_precision` / `accelerate config` (as diffusers does).
    assert parse_args(["--dataset", "photos"]).mixed_precision is None
    assert parse_args(["--dataset", "photos", "--mixed_precision", "bf16"]).mixed_precision == "bf16"


def test_a_misspelt_choice_in_a_preset_is_refused_naming_the_valid_ones(tmp_path, capsys) -> None:
    preset = tmp_path / "mine.yaml"
    preset.write_text("early_stopping_metric: cieded2000\nresolution: 64\n")
    error = _refused(capsys, ["--config", str(preset), "--dataset", "photos"])
    assert (
        f"{preset} sets early_stopping_metric: cieded2000, which is not one of psnr, psnr_ab, ssim, ciede2000" in error
    )
    assert "(did you mean ciede2000?)" in error
    # A metric without a better direction cannot pick a best checkpoint.
    preset.write_text("early_stopping_metric: colourfulness\n")
    assert "which is not one of" in _refused(capsys, ["--config", str(preset), "--dataset", "photos"])


def test_yaml_booleans_in_a_choice_get_a_quoting_hint(tmp_path, capsys) -> None:
    preset = tmp_path / "mine.yaml"
    preset.write_text("mixed_precision: no\n")  # YAML 1.1 reads an unquoted no as false
    error = _refused(capsys, ["--config", str(preset), "--dataset", "photos"])
    assert "sets mixed_precision: False" in error and "quote it" in error
    preset.write_text("mixed_precision: 'no'\n")
    assert parse_args(["--config", str(preset), "--dataset", "photos"]).mixed_precision == "no"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--early_stopping_metric", "cieded2000"], "invalid choice: 'cieded2000'"),
        (["--lr_scheduler", "cosine_restarts"], "invalid choice: 'cosine_restarts'"),
        (["--model", "pix2pix_unet265"], "--model pix2pix_unet265 is not a registered model (did you mean "),
        (["--losses", "l1,sssim:0.5"], "Unknown loss ['sssim']; choose from l1, huber, mse, ssim"),
        (["--logging_steps", "0"], "--logging_steps must be at least 1"),
        (["--model_overrides", "{depth: 7}"], "is not JSON"),
        (["--report_to", "tensorbord"], "invalid choice: 'tensorbord'"),
    ],
)
def test_bad_flags_are_one_sentence_before_anything_is_built(capsys, argv, message) -> None:
    assert message in _refused(capsys, ["--dataset", "photos", *argv])


def test_report_to_a_tracker_that_is_not_installed_gives_the_install_command(monkeypatch, capsys) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        trainer.args.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "wandb" else real_find_spec(name, *a),
    )
    error = _refused(capsys, ["--dataset", "photos", "--report_to", "wandb"])
    assert re.search(r"--report_to wandb needs the wandb package, which is not installed: pip install wandb", error)
    assert parse_args(["--dataset", "photos", "--report_to", "tensorboard"]).report_to == "tensorboard"
