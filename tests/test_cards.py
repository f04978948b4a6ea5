"""Model and Space cards as the Hub reads them: parsed with huggingface_hub, model-index fields, no local paths.

.venv/bin/python -m pytest tests/test_cards.py -q
"""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, SpaceCard, metadata_load
from PIL import Image

from models.diffusion import DiffusionSettings
from models.diffusion_card import render_diffusion_card
from models.diffusion_tiny import build_tiny_components
from models.hub import load_model
from models.model_card import METRIC_LABELS, metric_label, render_model_card
from models.pipeline import NetworkColorizer
from models.registry import create_model
from models.widget_example import WIDGET_INPUT, WIDGET_OUTPUT, write_widget_example
from space import deploy

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(path.parent for path in (REPO_ROOT / "weights").glob("*/config.json"))
# The validation row the trainer writes (judge.metrics.METRIC_NAMES), blotches included.
METRICS = {
    "psnr": 21.4,
    "psnr_ab": 24.1,
    "ssim": 0.848,
    "ciede2000": 12.59,
    "colourfulness": 27.6,
    "colourfulness_delta": 22.0,
    "ab_auc": 0.876,
    "blotches": 0.31,
}
BASELINE = {**METRICS, "ciede2000": 12.99, "colourfulness": 0.07, "blotches": 0.0}


def _front_matter(text: str) -> str:
    return re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL).group(1)


def _trained_card_data(dataset: str) -> dict:
    return {
        "title": "test colorizer",
        "dataset": dataset,
        "steps": 40,
        "images_seen": 160,
        "resolution": "32 px",
        "losses": "l1",
        "command": "accelerate launch trainer/train.py --config tiny",
        "metrics": {"model (step 40)": dict(METRICS), "grayscale baseline": dict(BASELINE)},
        "sample_grid": "samples.png",
    }


def _saved_card(model, folder: Path) -> ModelCard:
    """Save like the trainer does, then read README.md back the way the Hub does."""
    model.save_pretrained(folder)
    card = ModelCard.load(folder / "README.md")
    assert metadata_load(folder / "README.md") == card.data.to_dict()
    return card


def _check_model_index(
    card: ModelCard, *, metrics: dict, dataset_type: str, dataset_name: str, hint_loss: str | None = None
) -> None:
    results = card.data.eval_results
    assert results, "no model-index results"
    assert {r.metric_type: r.metric_value for r in results} == pytest.approx(metrics, abs=1e-4)
    for result in results:
        assert result.task_type == "image-to-image"
        assert result.dataset_type == dataset_type and result.dataset_name == dataset_name
        assert result.dataset_split == "validation"
        assert result.metric_name == metric_label(result.metric_type, hint_loss)
        if result.metric_type.startswith("hints10_"):  # a hint model: named after its base metric, with the points
            assert result.metric_name.startswith(METRIC_LABELS[result.metric_type.removeprefix("hints10_")])
    # The raw front matter has what the Hub's evaluation widget reads.
    index = yaml.safe_load(_front_matter(str(card)))["model-index"]
    assert index[0]["name"] == card.data.model_name
    assert index[0]["results"][0]["task"]["type"] == "image-to-image"
    assert {m["type"] for m in index[0]["results"][0]["metrics"]} == set(metrics)


@pytest.mark.parametrize("folder", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_models_render_cards_with_model_index_and_no_local_dataset_id(folder: Path) -> None:
    model = load_model(folder)  # card_data comes from the colorlab block of config.json
    card = ModelCard(str(render_model_card(model)))
    assert card.data.library_name == "colorlab" and card.data.pipeline_tag == "image-to-image"
    training = model.card_data
    dataset = training["dataset"]
    assert not card.data.datasets  # data/corpus is a local folder, even on a clone that lacks it
    front = _front_matter(str(card))
    assert dataset not in front
    _, model_metrics = next((k, v) for k, v in training["metrics"].items() if "baseline" not in k)
    _check_model_index(
        card,
        metrics=model_metrics,
        dataset_type="colorlab-open-photo-corpus",
        dataset_name="ColorLab open photo corpus",
        hint_loss=training.get("hint_loss"),
    )
    if "hints10_ciede2000" in model_metrics:  # the bundled hint model was validated on what users get
        assert training["hint_loss"] == "served"
        assert all("as served" in r.metric_name for r in card.data.eval_results if r.metric_type.startswith("hints10"))
    assert "## Limitations" in card.text and "## Validation metrics" in card.text


def _check_widget(card: ModelCard, folder: Path, *, with_output: bool = True) -> None:
    """The Hub's widget examples: an input image and (for a network) its colouring, both files of the folder."""
    (example,) = card.data.widget
    assert example["example_title"]
    source = folder / example["src"]
    assert source.is_file(), f"the widget input {example['src']} is not in {folder}"
    with Image.open(source) as image:
        assert image.mode == "L"  # the model's input: a gray photo
        size = image.size
    if with_output:
        output = folder / example["output"]["url"]
        assert output.is_file(), f"the widget output {example['output']['url']} is not in {folder}"
        with Image.open(output) as image:
            assert image.mode == "RGB" and image.size == size
    else:
        assert "output" not in example
    # Each example file stays tiny: the bundled weights have a size budget.
    assert all(
        (folder / name).stat().st_size < 60_000 for name in (WIDGET_INPUT, WIDGET_OUTPUT) if (folder / name).exists()
    )


@pytest.mark.parametrize("folder", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_cards_have_a_widget_example_whose_files_the_folder_holds(folder: Path) -> None:
    card = ModelCard.load(folder / "README.md")  # the file a user downloads from the Hub
    assert metadata_load(folder / "README.md") == card.data.to_dict()
    _check_widget(card, folder)
    rendered = ModelCard(str(render_model_card(load_model(folder))))  # the card stays what its config renders
    assert rendered.data.widget == card.data.widget


def test_a_saved_model_with_a_widget_example_points_at_its_own_files(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    model = create_model("unet_tiny")
    model.card_data.update(_trained_card_data("someone/old-photos"))
    model.card_data["widget_example"] = write_widget_example(NetworkColorizer(model), folder)
    card = _saved_card(model, folder)
    _check_widget(card, folder)
    front = yaml.safe_load(_front_matter(str(card)))
    assert front["widget"][0]["src"] == WIDGET_INPUT and front["widget"][0]["output"] == {"url": WIDGET_OUTPUT}


def test_a_card_without_a_widget_example_has_no_widget(tmp_path: Path) -> None:
    card = _saved_card(create_model("unet_tiny"), tmp_path / "model")
    assert getattr(card.data, "widget", None) is None and "widget" not in _front_matter(str(card))


def test_the_widget_command_adds_the_example_and_keeps_the_weights(tmp_path: Path) -> None:
    from models.hub import save_model_atomically
    from models.widget_example import main

    folder = tmp_path / "model"
    model = create_model("unet_tiny")
    model.card_data.update(_trained_card_data("someone/old-photos"))
    save_model_atomically(model, folder, dtype=torch.float16)
    weights = (folder / "model.safetensors").read_bytes()
    assert main(["--model", str(folder)]) == 0
    assert (folder / "model.safetensors").read_bytes() == weights  # same dtype, same bytes
    card = ModelCard.load(folder / "README.md")
    _check_widget(card, folder)
    _check_model_index(card, metrics=METRICS, dataset_type="someone/old-photos", dataset_name="someone/old-photos")
    assert main(["--model", str(tmp_path / "missing")]) == 2


def test_a_hub_dataset_is_named_in_datasets_and_the_results(tmp_path: Path) -> None:
    model = create_model("unet_tiny")
    model.card_data.update(_trained_card_data("someone/old-photos"))
    card = _saved_card(model, tmp_path / "model")
    assert card.data.datasets == ["someone/old-photos"]
    _check_model_index(card, metrics=METRICS, dataset_type="someone/old-photos", dataset_name="someone/old-photos")
    assert "blotches" in {r.metric_type for r in card.data.eval_results}  # the artifact metric is reported
    assert card.data.model_name == "test colorizer"


@pytest.mark.parametrize("kind", ["absolute", "relative-existing", "repo-folder"])
def test_local_datasets_never_appear_as_hub_ids(tmp_path: Path, monkeypatch, kind: str) -> None:
    monkeypatch.chdir(tmp_path)
    if kind == "absolute":
        dataset = str(tmp_path / "home" / "me" / "photos")
    elif kind == "relative-existing":  # user/name-shaped, but a folder here
        (tmp_path / "family" / "scans").mkdir(parents=True)
        dataset = "family/scans"
    else:  # a folder of the repository that a fresh clone lacks
        dataset = "outputs/photos"
    model = create_model("unet_tiny")
    model.card_data.update(_trained_card_data(dataset))
    card = _saved_card(model, tmp_path / "model")
    assert not card.data.datasets
    assert dataset not in _front_matter(str(card))
    name = Path(dataset).name
    _check_model_index(
        card, metrics=METRICS, dataset_type=f"local-dataset-{name}", dataset_name=f"local dataset '{name}'"
    )


def test_a_local_dataset_with_its_own_card_is_named_by_its_title(tmp_path: Path) -> None:
    corpus = tmp_path / "my-corpus"
    corpus.mkdir()
    (corpus / "README.md").write_text("---\nlicense: other\n---\n\n# Grandma's albums\n\nScans.\n")
    model = create_model("unet_tiny")
    model.card_data.update(_trained_card_data(str(corpus)))
    card = ModelCard(str(render_model_card(model)))
    assert {r.dataset_name for r in card.data.eval_results} == {"Grandma's albums"}
    assert str(tmp_path) not in _front_matter(str(card))


def test_an_untrained_model_has_no_results_and_says_so(tmp_path: Path) -> None:
    card = _saved_card(create_model("unet_tiny"), tmp_path / "model")
    assert card.data.eval_results is None and not card.data.datasets
    assert "not been trained by the ColorLab trainer" in card.text and "## Limitations" in card.text


def test_the_card_usage_snippet_runs(tmp_path: Path, monkeypatch) -> None:
    """The Use section, as a user would paste it (PIL imported, models.hub from the installed package)."""
    model = create_model("pix2pix_tiny")
    model.card_data.update(_trained_card_data("someone/old-photos"))
    folder = tmp_path / "model"
    card = _saved_card(model, folder)
    snippet = re.search(r"## Use\n.*?```python\n(.*?)```", card.text, re.DOTALL).group(1)
    assert "from PIL import Image" in snippet and "from models.hub import load_colorizer" in snippet
    monkeypatch.chdir(tmp_path)
    Image.new("L", (70, 50), 128).save("photo.jpg")
    namespace: dict = {}
    exec(snippet.replace("PATH_OR_REPO_ID", str(folder)), namespace)
    assert namespace["color"].size == (70, 50) and namespace["color"].mode == "RGB"


# --- diffusion card ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_components():
    return build_tiny_components()


@pytest.mark.parametrize(
    ("base_model", "hub_id"),
    [
        ("stable-diffusion-v1-5/stable-diffusion-v1-5", True),
        ("/models/sd15", False),
        ("weights/sd15", False),
        ("tiny", False),
    ],
)
def test_diffusion_card_names_only_a_hub_base_model(tiny_components, base_model: str, hub_id: bool) -> None:
    settings = DiffusionSettings(base_model=base_model, includes_base=False)
    card = ModelCard(str(render_diffusion_card(tiny_components, settings, _trained_card_data("someone/old-photos"))))
    assert card.data.library_name == "diffusers"
    assert card.data.base_model == (base_model if hub_id else None)
    if not hub_id:
        assert base_model not in _front_matter(str(card))
    if base_model.startswith("/"):
        assert base_model not in card.text  # a local base is named by its folder name only
    _check_model_index(card, metrics=METRICS, dataset_type="someone/old-photos", dataset_name="someone/old-photos")


def test_diffusion_card_has_the_widget_input_written_beside_it(tiny_components, tmp_path: Path) -> None:
    card_data = _trained_card_data("someone/old-photos")
    card_data["widget_example"] = write_widget_example(None, tmp_path)  # as the ControlNet trainer does
    settings = DiffusionSettings(base_model="tiny", includes_base=False)
    card = ModelCard(str(render_diffusion_card(tiny_components, settings, card_data)))
    _check_widget(card, tmp_path, with_output=False)


def test_diffusion_card_with_a_local_dataset_and_base_has_no_local_paths(tiny_components, tmp_path: Path) -> None:
    base = tmp_path / "sd15"
    base.mkdir()
    settings = DiffusionSettings(base_model=str(base), includes_base=True)
    card = ModelCard(str(render_diffusion_card(tiny_components, settings, _trained_card_data(str(tmp_path / "p")))))
    assert card.data.base_model is None and not card.data.datasets
    assert str(tmp_path) not in _front_matter(str(card))
    assert "from PIL import Image" in card.text


# --- Space card ----------------------------------------------------------------------------------------------
def test_space_card_lists_served_models_and_the_ratings_dataset() -> None:
    served = [
        {"name": "pix2pix", "source": "weights/pix2pix"},
        {"name": "community", "source": "someone/colorizer", "revision": "v2"},
    ]
    text = deploy.space_card(["someone/colorizer"], served=served, ratings_repo="me/colorlab-votes")
    card = SpaceCard(text)
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.models == ["someone/colorizer"] and card.data.datasets == ["me/colorlab-votes"]
    assert card.text.lstrip().startswith("# ColorLab")
    assert "**pix2pix**: bundled with the Space (`weights/pix2pix`)" in card.text
    assert "[someone/colorizer](https://huggingface.co/someone/colorizer) at `v2`" in card.text
    assert "https://huggingface.co/datasets/me/colorlab-votes" in card.text
    without = SpaceCard(deploy.space_card([], served=served))
    assert without.data.models == [] and without.data.datasets == []


def test_the_repository_space_card_parses() -> None:
    card = SpaceCard((REPO_ROOT / "space" / "README.md").read_text(encoding="utf-8"))
    assert card.data.models == [] and card.data.datasets == []  # filled in by space.deploy


def test_deploy_puts_the_ratings_dataset_in_the_card_and_the_space_variable(tmp_path: Path, monkeypatch) -> None:
    from app_support import save_tiny_models

    monkeypatch.delenv("COLORLAB_RATINGS_REPO", raising=False)
    config = save_tiny_models(tmp_path / "models", ["unet_tiny"])
    bundle = tmp_path / "bundle"
    argv = ["--space-id", "me/colorlab", "--models", str(config), "--ratings-repo", "me/votes"]
    assert deploy.main([*argv, "--dry-run", str(bundle)]) == 0
    card = SpaceCard((bundle / "README.md").read_text(encoding="utf-8"))
    assert card.data.datasets == ["me/votes"] and card.data.models == []
    assert "**unet**: bundled with the Space (`weights/unet`)" in card.text
    with mock.patch("space.deploy.HfApi") as api_class:
        assert deploy.main([*argv, "--token", "hf_x"]) == 0
    api_class.return_value.add_space_variable.assert_called_once_with(
        "me/colorlab", "COLORLAB_RATINGS_REPO", "me/votes"
    )
    assert deploy.main([*argv[:-1], "not a repo", "--dry-run", str(tmp_path / "other")]) == 1
