"""`--hints` in the trainer: a hint model is built (or widened from --init_from), trained on sampled points,
validated with and without hints, saved as a hint model, and resumes exactly (hints are redrawn per step)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from train_support import final_digests, make_photo_folder, run_trainer

from models.base import HINT_CHANNELS
from models.hint_propagation import HintPropagation
from models.hub import load_model
from models.registry import create_model
from trainer.args import parse_args
from trainer.hint_training import HINTED_PREFIX, served_ab, served_propagation, training_hint_maps


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


def _tiny_unet(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--config", "tiny", "--model", "unet_tiny", "--discriminator", "none", "--dataset", str(dataset),
        "--output_dir", str(output_dir), "--hints", *extra,
    ]  # fmt: skip


def test_a_hint_model_trains_validates_with_and_without_hints_and_saves_as_one(tmp_path, photos):
    out = run_trainer(_tiny_unet(photos, tmp_path / "run", "--final_model", "last"))
    assert json.loads((out / "config.json").read_text())["hints"] is True
    model = load_model(out)
    assert model.takes_hints and "colour hints" in model.colorlab["kind"]
    metrics = model.card_data["metrics"]
    (row,) = [values for name, values in metrics.items() if "baseline" not in name]
    assert "ciede2000" in row and HINTED_PREFIX + "ciede2000" in row


def test_init_from_an_automatic_model_keeps_its_weights_and_adds_zero_hint_inputs(tmp_path, photos):
    torch.manual_seed(0)
    automatic = create_model("unet_tiny")
    automatic.card_data.update(title="The automatic model", notes="its own notes", sweep={"sizes": {}})
    automatic.save_pretrained(tmp_path / "automatic")
    argv = _tiny_unet(photos, tmp_path / "run", "--init_from", str(tmp_path / "automatic"), "--max_train_steps", "1")
    out = run_trainer([*argv, "--val_fraction", "0", "--learning_rate", "0", "--final_model", "last"])
    hinted = load_model(out).eval()
    assert hinted.takes_hints
    first = hinted.stem[0].weight
    assert torch.count_nonzero(first[:, 1:]) == 0  # the new inputs start (and, at lr 0, stay) at zero
    assert torch.equal(first[:, :1], automatic.stem[0].weight)
    # the starting model's card facts describe that model, not this run
    assert hinted.card_data["init_from"] == str(tmp_path / "automatic")
    assert "sweep" not in hinted.card_data and hinted.card_data.get("title") != "The automatic model"
    assert "its own notes" not in (out / "README.md").read_text()


def test_hints_are_drawn_per_step_so_a_resumed_run_equals_an_uninterrupted_one(tmp_path, photos):
    ab = torch.rand(4, 2, 16, 16) * 2 - 1
    assert torch.equal(training_hint_maps(ab, seed=0, step=3, rank=0), training_hint_maps(ab, seed=0, step=3, rank=0))
    assert not torch.equal(
        training_hint_maps(ab, seed=0, step=3, rank=0), training_hint_maps(ab, seed=0, step=4, rank=0)
    )
    extra = ["--val_fraction", "0", "--final_model", "last", "--max_train_steps", "5"]
    whole = run_trainer(_tiny_unet(photos, tmp_path / "whole", *extra))
    shutil.copytree(whole / "checkpoint-3", tmp_path / "resumed" / "checkpoint-3")
    resumed = run_trainer(_tiny_unet(photos, tmp_path / "resumed", *extra, "--resume_from_checkpoint", "latest"))
    assert final_digests(resumed) == final_digests(whole)


def test_the_served_loss_sees_each_hint_and_passes_gradients_to_the_network():
    """--hint_loss served: the loss compares the output after the hint propagation, which is differentiable."""
    l_norm = torch.zeros(1, 1, 16, 16)
    l_norm[..., 8:] = 0.8  # a light right half: a hint on the left should barely reach it
    ab = torch.zeros(1, 2, 16, 16, requires_grad=True)
    hint_map = torch.zeros(1, HINT_CHANNELS, 16, 16)
    hint_map[0, :2, 4:6, 2:4] = torch.tensor([0.3, -0.2])[:, None, None]
    hint_map[0, 2, 4:6, 2:4] = 1.0
    served = served_ab(l_norm, ab, hint_map, HintPropagation())
    assert torch.allclose(served[0, :, 4, 2], torch.tensor([0.3, -0.2]), atol=0.01)  # the user's colour at the point
    assert served[0, :, 4, 12].abs().max() < 0.03  # not across the lightness edge
    served.sum().backward()
    assert ab.grad is not None and ab.grad.abs().sum() > 0
    # the network's own output when the loss is set to see it, or when the model takes no hints
    assert served_ab(l_norm, ab, hint_map, None) is ab


def test_hint_loss_chooses_what_validation_scores(tmp_path, photos):
    hinted = create_model("unet_tiny", hints=True)
    hinted.colorlab["hint_propagation"] = HintPropagation().to_config()
    served = parse_args(_tiny_unet(photos, tmp_path / "a"))
    assert served.hint_loss == "served" and served_propagation(hinted, served) == HintPropagation()
    assert served_propagation(hinted, parse_args(_tiny_unet(photos, tmp_path / "b", "--hint_loss", "network"))) is None
    assert served_propagation(create_model("unet_tiny"), served) is None
    extra = ["--final_model", "last", "--max_train_steps", "2"]
    scores = {}
    for loss in ("served", "network"):
        out = run_trainer(_tiny_unet(photos, tmp_path / loss, *extra, "--hint_loss", loss))
        saved = load_model(out)
        assert saved.card_data["hint_loss"] == loss  # the card labels the hinted metrics by it
        (row,) = [v for k, v in saved.card_data["metrics"].items() if "baseline" not in k]
        scores[loss] = row[HINTED_PREFIX + "ciede2000"]
    # the served output has each hint's colour spread over its region: far closer to the truth than an untrained
    # network's own output
    assert scores["served"] < scores["network"] - 1.0
