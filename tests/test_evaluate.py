"""`python -m judge.evaluate`: report files for tiny models on scikit-image's photos, ratings join, failures.

.venv/bin/python -m pytest tests/test_evaluate.py -q
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.color import rgb2lab

from judge import evaluate as ev
from judge.lpips_metric import AlexNetTrunk
from judge.metrics import METRIC_NAMES, colourfulness
from judge.report import build_report, render_markdown
from models.registry import create_model

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _write_photos(folder: Path, names: tuple[str, ...] = PHOTOS, side: int = 96) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((side, side))
        image.save(folder / f"{name}.png")
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return _write_photos(tmp_path / "photos")


@pytest.fixture
def two_models(tmp_path: Path) -> list[str]:
    """Two tiny colorizers with different (random) weights, saved in Hub format."""
    specs = []
    for name, variant in (("alpha", "unet_tiny"), ("beta", "simple_cnn_tiny")):
        create_model(variant).save_pretrained(tmp_path / variant)
        specs.append(f"{name}={tmp_path / variant}")
    return specs


@pytest.fixture(autouse=True)
def _empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No cached ImageNet weights can leak in from the machine running the tests.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def _ratings_db(folder: Path, preference: list[str], rounds: int = 8) -> Path:
    """An arena database where people prefer models in `preference` order (earlier wins) and rate them so."""
    from judge.ratings import RatingsStore

    sha = hashlib.sha256(b"photo").hexdigest()
    with RatingsStore(folder, models=preference, salt="evaluation-test-salt", rate_limit=None) as store:
        for _ in range(rounds):
            for i, better in enumerate(preference):
                for worse in preference[i + 1 :]:
                    pair = store.issue_pair(better, worse, sha, voter="tester")
                    choice = "a" if pair.model_a == better else "b"
                    stars = {better: 5 - i, worse: 5 - preference.index(worse)}
                    store.record_vote(
                        pair.token, choice, voter="tester", rating_a=stars[pair.model_a], rating_b=stars[pair.model_b]
                    )
    return folder / "ratings.sqlite3"


def _run(argv: list[str]) -> int:
    return ev.main([*argv, "--no_progress", "--image_size", "64", "--working_size", "64", "--n_boot", "200"])


def test_cli_writes_every_report_file_and_joins_human_ratings(tmp_path, photos, two_models):
    database = _ratings_db(tmp_path / "arena", ["alpha", "beta", "grayscale"])
    out = tmp_path / "report"
    argv = ["--models", *two_models, "--dataset", str(photos), "--out", str(out), "--grid_images", "3"]
    assert _run([*argv, "--ratings", str(database)]) == 0

    report = json.loads((out / "report.json").read_text())
    assert report["models"] == ["grayscale", "alpha", "beta"]
    assert report["n_images"] == len(PHOTOS)
    assert report["metrics"] == list(METRIC_NAMES)
    assert report["unavailable"]["lpips"].startswith("unavailable: no AlexNet weights (pass --lpips_weights")
    assert report["unavailable"]["fid"].startswith("unavailable: no Inception weights")

    with (out / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(PHOTOS) * 3
    for model in report["models"]:
        ciede = [float(r["ciede2000"]) for r in rows if r["model"] == model]
        stat = report["summary"][model]["ciede2000"]
        assert stat["mean"] == pytest.approx(np.mean(ciede))
        assert stat["low"] <= stat["mean"] <= stat["high"]
    # The grayscale row really is gray.
    assert report["summary"]["grayscale"]["colourfulness"]["mean"] < 1.0

    markdown = (out / "report.md").read_text()
    assert "| grayscale |" in markdown and "**" in markdown
    assert "unavailable: no AlexNet weights" in markdown
    for metric in METRIC_NAMES:
        assert (out / "charts" / f"{metric}.png").is_file()
    with Image.open(out / "grid.png") as grid:  # input | alpha | beta | ground truth, three image rows
        assert grid.size == (4 * 196 + 4, 28 + 3 * 196)
    assert len(report["grid_images"]) == 3 and report["grid_images"][0].startswith("00000_")

    human = report["human"]
    assert human["n_votes"] == 8 * 3
    scores = {name: human["models"][name]["bt_score"] for name in report["models"]}
    assert scores["alpha"] > scores["beta"] > scores["grayscale"]
    assert human["models"]["alpha"]["mos"] == 5.0
    for corr in human["correlations"].values():
        assert -1.0 <= corr["spearman"] <= 1.0 and -1.0 <= corr["kendall"] <= 1.0
        assert corr["n_models"] == 3
    assert "Spearman" in markdown and "Bradley-Terry" in markdown


def test_grayscale_baseline_keeps_lightness_and_drops_colour(tmp_path):
    source = Image.open(_write_photos(tmp_path, ("coffee",)) / "coffee.png")
    (output,) = ev.GrayscaleBaseline().colorize_batch([source], working_size=64)
    lab_in, lab_out = rgb2lab(np.asarray(source)), rgb2lab(np.asarray(output))
    assert output.size == source.size
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 0.5
    assert np.abs(lab_out[..., 1:]).max() < 2.0  # only 8-bit rounding is left of the chroma
    assert colourfulness(np.asarray(output)) < 1.0 < colourfulness(np.asarray(source))


def test_evaluation_is_deterministic(photos, two_models):
    colorizers = [ev.GrayscaleBaseline()]
    colorizers += [ev.load_colorizer(s.source, name=s.name) for s in map(ev.parse_model_spec, two_models)]
    images = ev.load_eval_images(str(photos), split=None, limit=2, image_size=48)
    first = ev.evaluate(colorizers, images, working_size=48, batch_size=2, progress=False)
    second = ev.evaluate(colorizers, images, working_size=48, batch_size=1, progress=False)
    assert first["per_image"] == second["per_image"]
    assert [(r["model"], r["image"]) for r in first["per_image"][:3]] == [
        ("grayscale", "00000_astronaut.png"),
        ("grayscale", "00001_chelsea.png"),
        ("alpha", "00000_astronaut.png"),
    ]


def test_model_specs_and_names():
    assert ev.parse_model_spec("best=runs/unet") == ev.ModelSpec("best", "runs/unet")
    assert ev.parse_model_spec("runs/unet/") == ev.ModelSpec("unet", "runs/unet/")
    assert ev.parse_model_spec("user/colorizer") == ev.ModelSpec("colorizer", "user/colorizer")
    with pytest.raises(ValueError, match="reserved"):
        ev.check_unique_names([ev.ModelSpec("grayscale", "x")])
    with pytest.raises(ValueError, match="distinct names"):
        ev.check_unique_names([ev.ModelSpec("unet", "a/unet"), ev.ModelSpec("unet", "b/unet")])


def test_default_split_prefers_validation(tmp_path):
    flat = _write_photos(tmp_path / "flat", ("astronaut",), side=16)
    split = tmp_path / "split"
    _write_photos(split / "train", ("astronaut",), side=16)
    _write_photos(split / "validation", ("coffee",), side=16)
    assert ev.resolve_split(str(flat), None) == "train"
    assert ev.resolve_split(str(split), None) == "validation"
    assert ev.resolve_split(str(split), "train") == "train"
    images = ev.load_eval_images(str(split), split=None, limit=None, image_size=16)
    assert images.split == "validation" and images.ids == ["00000_coffee.png"]


def test_flat_folder_scores_every_photo_whatever_the_file_names(tmp_path):
    # datasets alone would read "holiday_test-1.jpg" as a test split and score only that file (or fail).
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("holiday_test-1", "beach", "market_train-2"):
        Image.fromarray(data.astronaut()[:32, :32]).save(flat / f"{name}.png")
    assert ev.resolve_split(str(flat), None) == "train"
    images = ev.load_eval_images(str(flat), split=None, limit=None, image_size=16)
    assert len(images.ids) == 3


def test_saved_dataset_is_center_cropped(tmp_path):
    import datasets

    wide = Image.new("RGB", (60, 20), (200, 30, 30))
    wide.paste((30, 30, 200), (20, 0, 40, 20))  # a blue middle third: what a center crop keeps
    saved = tmp_path / "saved"
    features = datasets.Features({"image": datasets.Image()})
    datasets.Dataset.from_dict({"image": [wide, wide]}, features=features).save_to_disk(str(saved))
    images = ev.load_eval_images(str(saved), split=None, limit=1, image_size=16)
    assert len(images.rgb) == 1 and images.rgb[0].shape == (16, 16, 3)
    assert tuple(images.rgb[0][8, 8]) == (30, 30, 200)


def test_failures_are_one_sentence(tmp_path, photos, two_models, capsys):
    out = tmp_path / "out"
    assert _run(["--models", str(tmp_path / "missing"), "--dataset", str(photos), "--out", str(out)]) == 1
    assert "neither a local model folder nor a Hub repo id" in capsys.readouterr().err

    assert _run(["--models", *two_models, "--dataset", "someone/photos", "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: Could not list the splits of dataset 'someone/photos'") and "\n" not in error

    no_db = tmp_path / "no-arena"
    no_db.mkdir()
    argv = ["--models", *two_models, "--dataset", str(photos), "--out", str(out), "--ratings", str(no_db)]
    assert _run(argv) == 1
    assert "no ratings database there" in capsys.readouterr().err
    assert not any(no_db.iterdir())  # nothing created where there was no database
    assert not out.exists()  # failed before writing anything


def test_lpips_needs_a_weights_file_and_the_report_says_whose(tmp_path, photos, two_models):
    # Code-path check only: a random AlexNet saved in torchvision's layout. The report must flag that it is not
    # the published checkpoint, so it can never pass for real LPIPS.
    trunk = AlexNetTrunk()
    weights = tmp_path / "alexnet.pth"
    torch.save(trunk.state_dict(), weights)
    out = tmp_path / "report"
    argv = ["--models", two_models[0], "--dataset", str(photos), "--out", str(out), "--limit", "2", "--no_fid"]
    assert _run([*argv, "--lpips_weights", str(weights), "--grid_images", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "lpips" in report["metrics"] and "lpips" not in report["unavailable"]
    assert report["config"]["weights"]["lpips"]["matches_published"] is False
    assert report["unavailable"]["fid"] == "unavailable: skipped with --no_fid"
    assert "does NOT match the published `alexnet-owt-7be5be79.pth`" in (out / "report.md").read_text()
    assert not (out / "grid.png").exists()


def test_fid_and_kid_columns_from_inception_features():
    images = ev.EvalImages(ids=[f"{i:05d}" for i in range(40)], rgb=[np.zeros((8, 8, 3), np.uint8)] * 40, split="x")

    rng = np.random.default_rng(0)
    per_image = [{"image": i, "model": m, **dict.fromkeys(METRIC_NAMES, 1.0)} for m in ("gray", "net") for i in "ab"]
    features = {"ground truth": rng.normal(size=(40, 4)), "gray": rng.normal(size=(40, 4)) + 2.0}
    features["net"] = features["ground truth"] + 0.01
    raw = {"per_image": per_image, "features": features, "grid": {"indices": []}, "seconds": {}}
    config = {"n_boot": 50, "seed": 0}
    report = build_report(raw, images, ["gray", "net"], {}, config)
    assert report["metrics"][-2:] == ["fid", "kid"]
    assert report["summary"]["net"]["fid"]["mean"] < report["summary"]["gray"]["fid"]["mean"]
    assert "FID ↓" in render_markdown(report)

    raw["features"] = {k: v[:1] for k, v in features.items()}
    images.rgb = images.rgb[:1]
    report = build_report(raw, images, ["gray", "net"], {}, config)
    assert "fid" not in report["metrics"] and "at least 2 images" in report["unavailable"]["fid"]


def test_size_average_runs_the_networks_at_two_sizes_and_is_checked_first(tmp_path, photos, two_models, capsys):
    out = tmp_path / "averaged"
    assert _run(["--models", *two_models, "--dataset", str(photos), "--out", str(out), "--size_average", "32"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["size_average"] == 32
    assert "size-averaged with 32 px" in (out / "report.md").read_text()
    plain = tmp_path / "plain"
    assert _run(["--models", *two_models, "--dataset", str(photos), "--out", str(plain)]) == 0
    averaged = json.loads((out / "report.json").read_text())["summary"]
    single = json.loads((plain / "report.json").read_text())["summary"]
    assert averaged["grayscale"] == single["grayscale"]  # the baseline has nothing to average
    assert averaged["alpha"]["ciede2000"]["mean"] != single["alpha"]["ciede2000"]["mean"]
    # the same side as the working size would only repeat the prediction: refused before any photo is read
    same = tmp_path / "same"
    assert _run(["--models", *two_models, "--dataset", str(photos), "--out", str(same), "--size_average", "64"]) == 1
    assert "same 64 px working side" in capsys.readouterr().err
    assert not same.exists()
    with pytest.raises(SystemExit):
        _run(["--models", *two_models, "--dataset", str(photos), "--out", str(same), "--size_average", "big"])
    assert "--size_average must be a number of pixels" in capsys.readouterr().err


def test_precision_is_applied_to_each_network_and_recorded(tmp_path, photos, two_models, capsys):
    out = tmp_path / "fp32"
    assert _run(["--models", *two_models, "--dataset", str(photos), "--out", str(out), "--precision", "fp32"]) == 0
    precisions = json.loads((out / "report.json").read_text())["config"]["precisions"]
    assert set(precisions) == {"alpha", "beta"}  # the grayscale baseline has no network
    assert all(line.endswith("fp32 (asked for)") for line in precisions.values())
    assert "precision: alpha: fp32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run(["--models", *two_models, "--dataset", str(photos), "--out", str(out), "--precision", "fp16"])
    assert "--precision" in capsys.readouterr().err
