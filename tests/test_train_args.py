"""The trainer's command line: a typed config per model family, grouped --help with a default and a help text on
every flag, and problems (choices, types, another family's flags) refused in one sentence before anything is built,
whether they were typed or came from a YAML preset.

    .venv/bin/python -m pytest tests/test_train_args.py -q -x
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re

import pytest

import trainer.args
from trainer.args import CONFIG_DIR, _build_parser, parse_args
from trainer.config import ControlNetTrainingConfig, GANTrainingConfig, TrainingConfig, loggable

GROUP_TITLES = [  # by family: the shared groups, then GAN, then diffusion
    "shared: model",
    "shared: data",
    "shared: optimisation",
    "shared: validation, logging and checkpoints",
    "shared: Hugging Face Hub",
    "pix2pix and baselines: the generator, its losses and the output model",
    "GAN: the discriminator (pix2pix models, or any model with --discriminator patchgan)",
    "GAN: adversarial loss and schedule",
    "diffusion (--model controlnet)",
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


def test_help_shows_a_help_text_and_a_default_on_every_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    # one entry per flag: from its line ("  --flag ...") to the next flag's or group's, lines joined
    entries = [" ".join(entry.split()) for entry in re.split(r"\n(?=  --|\S)", text)]
    flags = [action.option_strings[-1] for action in _build_parser()._actions if action.dest != "help"]
    shown = {entry.split()[0]: entry for entry in entries if entry.startswith("--")}
    for flag in flags:
        assert flag in shown, f"{flag} is not in --help"
        assert re.search(r"\S.* \(default: [^)]+\)", shown[flag]), f"{flag} shows no help text and default"
    assert "--hints" in shown and "(default: off)" in shown["--hints"]  # a switch reads off, not False
    assert "(default: unset)" in shown["--max_train_steps"]  # None reads unset
    assert "(default: 0.25 1.0)" in shown["--crop_scale"]


def test_each_family_declares_each_field_once_with_its_flag() -> None:
    shared = {field.name for field in dataclasses.fields(TrainingConfig)}
    gan = {field.name for field in GANTrainingConfig.own_fields()}
    diffusion = {field.name for field in ControlNetTrainingConfig.own_fields()}
    assert not shared & gan and not shared & diffusion and not gan & diffusion
    assert len(gan) == 19 and diffusion == {"base_model", "proportion_empty_prompts", "num_validation_samples"}
    # what the ControlNet cannot use (a fixed architecture and loss, always its last weights) is not shared
    generator = {"model_overrides", "hints", "hint_loss", "losses", "class_rebalancing", "perceptual_weights"}
    assert generator | {"final_model"} <= gan
    flags = {action.dest for action in _build_parser()._actions} - {"help"}
    assert flags == shared | gan | diffusion
    for field in dataclasses.fields(GANTrainingConfig) + dataclasses.fields(ControlNetTrainingConfig):
        assert field.metadata["help"].strip(), field.name


def test_the_model_picks_the_family_and_the_config_is_typed() -> None:
    gan = parse_args(["--config", "tiny", "--dataset", "photos"])
    assert type(gan) is GANTrainingConfig and gan.trains_discriminator
    assert (gan.d_width, gan.resolution, gan.crop_scale) == (8, 32, [0.25, 1.0])
    assert type(parse_args(["--dataset", "photos", "--model", "unet_tiny"])) is GANTrainingConfig
    diffusion = parse_args(["--config", "controlnet_tiny", "--dataset", "photos"])
    assert type(diffusion) is ControlNetTrainingConfig and not hasattr(diffusion, "lambda_l1")
    assert diffusion.proportion_empty_prompts == 0.5
    # the tracker's hyper-parameters: the family's fields, flat, named like the flags, without the token
    logged = loggable(parse_args(["--dataset", "photos", "--hub_token", "secret"]))
    assert logged["lambda_l1"] == 100.0 and logged["model_overrides"] == "{}" and "hub_token" not in logged
    assert "base_model" not in logged


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--config", "controlnet_tiny", "--lambda_l1", "10"],
            "--lambda_l1 applies only to pix2pix models and the regression baselines; remove it, or pick a registry "
            "--model (--model controlnet trains a diffusion colorizer)",
        ),
        (
            ["--model", "pix2pix_tiny", "--base_model", "tiny", "--num_validation_samples", "3"],
            "--base_model, --num_validation_samples apply only to diffusion training (--model controlnet); remove "
            "them or pass --model controlnet",
        ),
        (
            ["--config", "tiny", "--model", "controlnet", "--base_model", "tiny"],
            "tiny sets d_layers, d_width, d_start_step, which apply only to pix2pix models and the regression "
            "baselines, not to --model controlnet; use a controlnet preset such as controlnet_tiny, or remove them "
            "from the preset",
        ),
        (
            ["--config", "controlnet_tiny", "--model", "pix2pix_tiny"],
            "controlnet_tiny sets base_model, proportion_empty_prompts, num_validation_samples, which apply only to "
            "diffusion training",
        ),
        (
            ["--model", "unet_tiny", "--lambda_l1", "10"],
            "--lambda_l1 applies only to GAN training, and this run trains no discriminator (--model unet_tiny is a "
            "regression baseline); remove it or set --discriminator patchgan",
        ),
        (
            ["--model", "pix2pix_tiny", "--discriminator", "none", "--d_width", "8", "--gan_mode", "lsgan"],
            "--d_width, --gan_mode apply only to GAN training, and this run trains no discriminator (--discriminator "
            "none); remove them or set --discriminator patchgan",
        ),
        (
            ["--model", "pix2pix_tiny", "--lambda_gan", "0", "--real_label", "0.9"],
            "(--lambda_gan 0); remove it or set --lambda_gan above 0",
        ),
    ],
)
def test_flags_and_preset_keys_of_another_family_are_refused(capsys, argv, message) -> None:
    assert message in _refused(capsys, ["--dataset", "photos", *argv])


# The ControlNet has a fixed architecture, trains on the noise-prediction loss and always outputs its last weights:
# these shared-looking flags would do nothing for it.
CONTROLNET_IGNORES = "apply only to pix2pix models and the regression baselines"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--losses", "l1:1,ssim:0.5"],
            "--losses applies only to pix2pix models and the regression baselines; remove it, or pick a registry "
            "--model (--model controlnet trains a diffusion colorizer)",
        ),
        (["--hints"], "--hints applies only to pix2pix models and the regression baselines; remove it"),
        (["--model_overrides", '{"depth": 7}'], "--model_overrides applies only to pix2pix models"),
        (["--final_model", "last"], "--final_model applies only to pix2pix models and the regression baselines"),
        (["--hint_loss", "network"], "--hint_loss applies only to pix2pix models"),
        (["--perceptual_weights", "vgg16.pth", "--class_rebalancing", "0.3"], f"{CONTROLNET_IGNORES}; remove them"),
    ],
)
def test_generator_flags_are_refused_for_controlnet(capsys, argv, message) -> None:
    error = _refused(capsys, ["--config", "controlnet_tiny", "--dataset", "photos", *argv])
    assert message in error


def test_a_gan_presets_generator_keys_are_refused_for_controlnet(capsys) -> None:
    argv = ["--config", "colour_l1", "--dataset", "photos", "--model", "controlnet", "--base_model", "tiny"]
    assert (
        "colour_l1 sets model_overrides, losses, final_model, discriminator, which apply only to pix2pix models and "
        "the regression baselines, not to --model controlnet; use a controlnet preset such as controlnet_tiny"
    ) in _refused(capsys, argv)


def test_generator_flags_still_work_for_a_model_without_a_discriminator() -> None:
    argv = ["--dataset", "photos", "--model", "unet_tiny", "--losses", "l1:1,ssim:0.5", "--final_model", "last"]
    args = parse_args([*argv, "--model_overrides", '{"width": 8}', "--hints", "--hint_loss", "network"])
    assert not args.trains_discriminator
    assert (args.losses, args.final_model, args.model_overrides) == ("l1:1,ssim:0.5", "last", {"width": 8})
    assert (args.hints, args.hint_loss) == (True, "network")
    grow = ["--dataset", "photos", "--model", "unet_tiny", "--init_from", "weights/colour_l1"]
    assert parse_args([*grow, "--model_overrides", '{"global_context": true}']).model_overrides == {
        "global_context": True
    }


def test_hint_loss_without_hints_is_refused(tmp_path, capsys) -> None:
    error = _refused(capsys, ["--dataset", "photos", "--model", "unet_tiny", "--hint_loss", "network"])
    assert error.endswith(
        "error: --hint_loss network applies only to a hint model, and this run trains none (no --hints); pass "
        "--hints to train one, or remove --hint_loss"
    )
    preset = tmp_path / "mine.yaml"
    preset.write_text("model: unet_tiny\nhint_loss: served\n")
    error = _refused(capsys, ["--config", str(preset), "--dataset", "photos"])
    assert error.endswith(
        f"error: {preset} sets hint_loss, which applies only to a hint model, and this run trains none (neither "
        "hints: true nor --hints); pass --hints or add hints: true to the preset, or remove hint_loss from it"
    )
    # the default is no choice, and with --hints (typed or from the preset) the flag means something
    assert parse_args(["--dataset", "photos", "--model", "unet_tiny"]).hint_loss == "served"
    assert parse_args(["--config", str(preset), "--dataset", "photos", "--hints"]).hint_loss == "served"
    assert parse_args(["--config", "colour_hints", "--dataset", "photos", "--hint_loss", "network"]).hints


def test_gan_keys_of_a_preset_pass_for_a_model_without_a_discriminator() -> None:
    # a preset is a recipe reused with other models (the tests train every baseline with tiny's settings)
    args = parse_args(["--config", "tiny", "--dataset", "photos", "--model", "unet_tiny", "--discriminator", "none"])
    assert not args.trains_discriminator and args.d_width == 8
    # the switches themselves are never refused, and a discriminator forced onto a baseline takes the GAN flags
    assert parse_args(["--dataset", "photos", "--model", "pix2pix_tiny", "--lambda_gan", "0"]).lambda_gan == 0
    forced = ["--dataset", "photos", "--model", "unet_tiny", "--discriminator", "patchgan", "--d_width", "8"]
    assert parse_args(forced).trains_discriminator


@pytest.mark.parametrize(
    ("preset_text", "message"),
    [
        ("resolution: big\n", "argument --resolution: invalid int value: 'big'"),
        ("resolution: 64.5\n", "sets resolution: 64.5, which is not a whole number"),
        ("crop_scale: 0.5\n", "sets crop_scale: 0.5, which is not a list of 2 numbers"),
        ("hints: 1\n", "sets hints: 1, which is not true or false"),
        ("- model: unet\n", "is not a YAML mapping"),
    ],
)
def test_a_preset_value_of_the_wrong_type_is_one_sentence(tmp_path, capsys, preset_text, message) -> None:
    preset = tmp_path / "mine.yaml"
    preset.write_text(preset_text)
    assert message in _refused(capsys, ["--config", str(preset), "--dataset", "photos"])


def test_a_preset_number_yaml_reads_as_text_is_converted_like_a_typed_flag(tmp_path) -> None:
    preset = tmp_path / "mine.yaml"
    preset.write_text("learning_rate: 1e-4\nresolution: 64\n")  # YAML 1.1 reads 1e-4 (no dot) as a string
    args = parse_args(["--config", str(preset), "--dataset", "photos"])
    assert (args.learning_rate, args.resolution) == (1e-4, 64)


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
