"""Native working size: recorded by the trainer in config.json, kept through save/load, used by default ("auto")
by the pipeline, the CLI, the app's model pool and the evaluation command; and multi-scale batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from train_support import make_photo_folder, run_trainer

from judge.evaluate import main as evaluate_main
from models.colorize import main as colorize_main
from models.hub import load_colorizer, load_model
from models.pipeline import DEFAULT_WORKING_SIZE, NetworkColorizer, prepare_image
from models.registry import create_model
from space.model_pool import ModelPool, ModelSpec
from trainer.data import CropConfig


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"), max_side=96)


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory) -> Path:
    """A tiny colour-class U-Net trained on multi-scale 32-64 px batches (native size: the middle, 48)."""
    out = tmp_path_factory.mktemp("trained") / "model"
    argv = ["--config", "tiny", "--dataset", str(photos), "--output_dir", str(out), "--model", "unet_tiny"]
    argv += ["--model_overrides", '{"ab_classes": true}', "--losses", "classes", "--discriminator", "none"]
    argv += ["--resolution", "32", "--max_resolution", "64", "--save_dtype", "fp16", "--final_model", "last"]
    return run_trainer(argv)


def _spy_working_shapes(monkeypatch) -> list[tuple[int, int]]:
    shapes: list[tuple[int, int]] = []
    original = NetworkColorizer.predict_ab

    def spy(self, l_norm, **hooks):
        shapes.append(tuple(l_norm.shape[-2:]))
        return original(self, l_norm, **hooks)

    monkeypatch.setattr(NetworkColorizer, "predict_ab", spy)
    return shapes


def test_the_trainer_records_the_native_size_and_training_facts_in_config(trained):
    block = json.loads((trained / "config.json").read_text())["colorlab"]
    assert block["native_working_size"] == 48
    assert block["trained_resolution"] == [32, 64]
    assert block["kind"] == "colour classes"
    assert block["weights_dtype"] == "float16"
    assert block["training"]["steps"] == 6 and "32-64 px" in block["training"]["resolution"]
    assert "native working size: 48 px" in (trained / "README.md").read_text()


def test_save_load_round_trip_keeps_card_dtype_and_native_size(trained, tmp_path):
    model = load_model(trained)
    assert model.native_working_size == 48
    model.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / "README.md").read_text() == (trained / "README.md").read_text()
    with safe_open(str(tmp_path / "copy" / "model.safetensors"), "pt") as weights:
        assert all(weights.get_tensor(k).dtype == torch.float16 for k in weights.keys() if "num_batches" not in k)  # noqa: SIM118
    saved = json.loads((tmp_path / "copy" / "config.json").read_text())
    assert saved["colorlab"] == json.loads((trained / "config.json").read_text())["colorlab"]


def test_the_pipeline_runs_at_the_native_size_unless_told_otherwise(trained, photo, monkeypatch):
    colorizer = load_colorizer(trained)
    shapes = _spy_working_shapes(monkeypatch)
    image = photo("astronaut", 120)
    colorizer.colorize(image)
    colorizer.colorize(image, working_size="auto")
    colorizer.colorize(image, working_size=64)
    assert shapes == [(48, 48), (48, 48), (64, 64)]
    with pytest.raises(ValueError, match="a number of pixels or 'auto'"):
        colorizer.colorize(image, working_size="large")
    untrained = NetworkColorizer(create_model("unet_tiny"))  # records no native size
    assert untrained.native_working_size == DEFAULT_WORKING_SIZE


def test_keep_aspect_runs_a_rectangle_of_about_the_same_area(trained, photo):
    colorizer = load_colorizer(trained)
    prepared = prepare_image(photo("astronaut", 120).crop((0, 0, 120, 60)))  # 2:1
    height, width = colorizer.working_shape(prepared, None, keep_aspect=True)
    multiple = colorizer.size_multiple
    assert height % multiple == 0 and width % multiple == 0
    assert abs(width / height - 2) < 0.2 and abs(height * width / 48**2 - 1) < 0.1
    assert colorizer.working_shape(prepared, None, keep_aspect=False) == (48, 48)
    result = colorizer.colorize(photo("astronaut", 120).crop((0, 0, 120, 60)), keep_aspect=True, flip_average=True)
    assert result.size == (120, 60)


def test_flip_average_is_the_mean_of_the_straight_and_mirrored_predictions(trained):
    colorizer = load_colorizer(trained)
    l_norm = torch.rand(1, 1, 48, 48) * 2 - 1
    expected = 0.5 * (colorizer.predict_ab(l_norm) + colorizer.predict_ab(l_norm.flip(-1)).flip(-1))
    torch.testing.assert_close(colorizer.predict_ab_flip_averaged(l_norm), expected)


def test_the_cli_uses_the_native_size_by_default(trained, photo, tmp_path, monkeypatch, capsys):
    photo("astronaut", 120).save(tmp_path / "a.png")
    shapes = _spy_working_shapes(monkeypatch)
    assert colorize_main(["--model", str(trained), str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 0
    args = ["--model", str(trained), str(tmp_path / "a.png"), "--out", str(tmp_path / "p"), "--working_size", "64"]
    assert colorize_main(args) == 0
    assert shapes == [(48, 48), (64, 64)]
    assert colorize_main([*args, "--working_size", "big"]) == 2
    assert "--working_size must be a number of pixels or 'auto'" in capsys.readouterr().err


def test_the_app_pool_runs_auto_at_each_models_native_size(trained, photo, monkeypatch):
    pool = ModelPool.load([ModelSpec("classes", str(trained))])
    entry = pool.get("classes")
    assert entry.working_size_for(0) == 48 and entry.working_size_for(None) == 48
    assert entry.working_size_for(96) == 96
    shapes = _spy_working_shapes(monkeypatch)
    entry.colorize(photo("astronaut", 120), working_size=0, saturation=1.0)
    assert shapes == [(48, 48)]


def test_evaluate_uses_native_sizes_and_sweeps(trained, photos, tmp_path):
    out = tmp_path / "report"
    argv = ["--models", f"classes={trained}", "--dataset", str(photos), "--limit", "2", "--image_size", "64"]
    argv += ["--out", str(out), "--no_fid", "--no_progress", "--sweep", "32,64"]
    assert evaluate_main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["working_sizes"]["classes"] == 48
    sweep = report["sweep"]
    assert sweep["sizes"] == [32, 64]
    assert set(sweep["models"]["classes"]["32"]) == {"ciede2000", "ab_auc", "colourfulness_delta", "blotches"}
    assert "## Working-size sweep" in (out / "report.md").read_text()
    assert "classes 48 px" in (out / "report.md").read_text()


def test_multiscale_batches_share_one_side_and_are_reproducible():
    crop = CropConfig(resolution=128, max_resolution=256, size_multiple=32, batch_size=4)
    assert crop.sides == [128, 160, 192, 224, 256]
    sides = [crop.side_for_batch(0, epoch=1, group=g) for g in range(40)]
    assert sides == [crop.side_for_batch(0, epoch=1, group=g) for g in range(40)]
    assert set(sides) == set(crop.sides)  # every size is drawn
    assert CropConfig(resolution=64).side_for_batch(0, 0, 5) == 64


def test_multiscale_training_samples_have_their_batchs_side(photos):
    from corpus.dataset_sources import load_splits
    from trainer.data import ColorizationDataset

    train, _, column = load_splits(str(photos))
    crop = CropConfig(resolution=32, max_resolution=64, size_multiple=16, batch_size=2)
    dataset = ColorizationDataset(train, image_column=column, crop=crop, seed=3)
    for position in range(0, 8, 2):
        first, second = dataset[position], dataset[position + 1]
        assert first["L"].shape == second["L"].shape
        side = crop.side_for_batch(3, 0, position // 2)
        assert tuple(first["L"].shape[-2:]) == (side, side)
    assert np.array_equal(dataset[0]["ab"].numpy(), dataset[0]["ab"].numpy())


def test_the_card_shows_a_recorded_working_size_sweep():
    model = create_model("unet_tiny")
    model.card_data["sweep"] = {
        "command": "python -m judge.evaluate --sweep 128,256",
        "gray_ciede2000": 12.87,
        "sizes": {"128": {"ciede2000": 12.5, "ab_auc": 0.87, "colourfulness_delta": 30.0, "blotches": 0.0}},
    }
    card = str(model.generate_model_card())
    assert "## Working-size sweep" in card and "| 128 | 12.50 | 0.8700 | 30.0 | 0.000 |" in card
