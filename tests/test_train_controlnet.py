"""`trainer/train.py --model controlnet` on the tiny in-code base: resume, output folder, captions, push, errors.

    .venv/bin/python -m pytest tests/test_train_controlnet.py -q -x

Runs `trainer.train.main` in-process on 32 px crops of real photos (batch 2, a few steps). The tiny
base has random weights, so these tests check the training loop's behaviour, never colour quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_push import FakeHfApi, reset_fake_hub
from train_support import final_digests, make_photo_folder, run_cli, run_trainer

import trainer.push
from models.color import rgb_to_lab
from models.diffusion import DiffusionColorizer
from models.digest import weights_digest
from models.hub import DIFFUSION_MARKER, load_colorizer
from trainer.checkpoints import list_checkpoints

CONTROLNET_WEIGHTS = Path("controlnet") / "diffusion_pytorch_model.safetensors"
SAMPLES = 2  # --num_validation_samples
SIDE = 32  # --resolution of the controlnet_tiny preset


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight colour photos as small JPEGs, each with a caption in metadata.jsonl (the imagefolder convention)."""
    folder = make_photo_folder(tmp_path_factory.mktemp("photos"), max_side=48)
    names = sorted(path.name for path in folder.glob("*.jpg"))
    lines = [json.dumps({"file_name": name, "text": f"a photo of {name[:-4]}"}) for name in names]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def controlnet_run(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    """The controlnet_tiny preset (tiny base, 32 px, batch 2, a 2-photo validation split), 3 steps."""
    return [
        "--config", "controlnet_tiny", "--dataset", str(dataset), "--output_dir", str(output_dir),
        "--max_train_steps", "3", "--checkpointing_steps", "2", "--validation_steps", "2",
        "--num_validation_samples", str(SAMPLES), *extra,
    ]  # fmt: skip


def _lightness(image: Image.Image) -> torch.Tensor:
    rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).double() / 255.0
    return rgb_to_lab(rgb)[0]


@pytest.fixture(scope="module")
def whole(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 3-step run with captions (checkpoint at step 2, validation at steps 2 and 3)."""
    return run_trainer(controlnet_run(photos, tmp_path_factory.mktemp("whole") / "out", "--caption_column", "text"))


def test_resume_from_a_checkpoint_ends_with_the_uninterrupted_runs_weights(
    whole: Path, photos: Path, tmp_path: Path
) -> None:
    assert [path.name for path in list_checkpoints(whole)] == ["checkpoint-2"]
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(whole / "checkpoint-2", resumed_dir / "checkpoint-2")
    resumed = run_trainer(
        controlnet_run(photos, resumed_dir, "--caption_column", "text", "--resume_from_checkpoint", "latest")
    )
    assert final_digests(resumed) == final_digests(whole)
    final, again = load_file(whole / CONTROLNET_WEIGHTS), load_file(resumed / CONTROLNET_WEIGHTS)
    assert final.keys() == again.keys()
    assert all(torch.equal(final[key], again[key]) for key in final)
    # the third step did change the ControlNet, so equal weights mean the resumed step repeated it exactly
    at_step_two = load_file(whole / "checkpoint-2" / "model.safetensors")
    assert any(not torch.equal(at_step_two[key], final[key]) for key in final)
    assert "- steps: 3" in (resumed / "README.md").read_text()


def test_output_is_a_loadable_colorizer_with_card_and_multi_sample_grid(whole: Path, photos: Path, photo) -> None:
    marker = json.loads((whole / DIFFUSION_MARKER).read_text())
    assert marker["base_model"] == "tiny" and marker["resolution"] == SIDE and marker["includes_base"]
    card = (whole / "README.md").read_text()
    expected = (f"- dataset: {photos}", "- steps: 3", "- command: `accelerate launch trainer/train.py")
    for text in (*expected, "Useful quality needs a pretrained Stable Diffusion base model"):
        assert text in card, text
    assert f"mean of {SAMPLES} samples" in card and "grayscale baseline" in card and "(samples.png)" in card
    with Image.open(whole / "samples.png") as grid:  # gray | sample 1 | sample 2 | ground truth
        assert grid.width == (2 + SAMPLES) * SIDE
    assert (whole / "validation" / "samples-0000002.png").is_file()
    assert (whole / "loss_curves.png").is_file()

    colorizer = load_colorizer(whole)
    assert isinstance(colorizer, DiffusionColorizer)
    image = photo("astronaut", 60)
    output = colorizer.colorize(image, num_inference_steps=2)
    assert output.size == image.size
    # 8-bit rounding of the recombined colour moves L by well under one unit
    assert float((_lightness(output)[0] - _lightness(image)[0]).abs().max()) < 1.0
    # logs/final_weights.txt names the saved ControlNet by its tensors (the digest the precision cache keys weights by,
    # without the saved config, which carries the main process's metrics)
    assert final_digests(whole) == [weights_digest(colorizer.components.controlnet, with_config=False)]


def test_push_to_hub_uploads_the_diffusion_folder_and_logs_without_checkpoints(
    photos: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(trainer.push, "HfApi", FakeHfApi)
    reset_fake_hub()
    one_step = ["--max_train_steps", "1", "--checkpointing_steps", "1", "--val_fraction", "0"]
    out = run_trainer(controlnet_run(photos, tmp_path / "out", *one_step, "--push_to_hub", "--hub_model_id", "me/cn"))
    assert list_checkpoints(out) and (out / "logs").is_dir()  # checkpoints there, but not uploaded
    (upload,) = FakeHfApi.instances[-1].uploads
    assert upload["repo_id"] == "me/cn" and Path(upload["folder_path"]) == out
    sent = upload["files"]
    assert {DIFFUSION_MARKER, "README.md", "model_index.json", str(CONTROLNET_WEIGHTS)} <= sent
    assert any(name.startswith("unet/") for name in sent)  # the tiny base must travel with the ControlNet
    assert "logs/final_weights.txt" in sent  # the logs travel with the model
    assert not any(name.startswith(("checkpoint-", "validation/")) for name in sent)
    assert [call for call, _ in FakeHfApi.calls] == ["whoami", "create_repo", "create_repo", "upload_folder"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--base_model", ""], "needs --base_model"),
        (["--resolution", "30"], "not a multiple of 4"),
        (["--ema_decay", "0.9"], "--ema_decay: not supported with --model controlnet"),
        (["--num_validation_samples", "0"], "--num_validation_samples must be at least 1"),
    ],
)
def test_setup_problems_are_one_sentence_and_write_nothing(
    photos: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert run_cli(controlnet_run(photos, out, *extra)) == 1
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not out.exists()


# The ControlNet has a fixed architecture, trains on the noise-prediction loss and always outputs its last weights.
IGNORED = (
    "applies only to pix2pix models and the regression baselines; remove it, or pick a registry --model (--model "
    "controlnet trains a diffusion colorizer)"
)


@pytest.mark.parametrize(
    "extra",
    [["--losses", "l1:1,ssim:0.5"], ["--hints"], ["--model_overrides", '{"depth": 7}'], ["--final_model", "last"]],
)
def test_flags_the_controlnet_would_ignore_are_refused_before_anything_is_written(
    photos: Path, tmp_path: Path, capsys, extra: list[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(controlnet_run(photos, out, *extra))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith(f" error: {extra[0]} {IGNORED}"), errors
    assert not out.exists()
