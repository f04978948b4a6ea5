"""Model pool: configuration formats, per-model load failures, the untrained fallback, and name-only selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from app_support import save_tiny_models
from PIL import Image

from models.pipeline import NetworkColorizer
from models.registry import create_model
from space.model_pool import (
    ModelChoiceError,
    ModelPool,
    ModelSpec,
    PoolEntry,
    configured_specs,
    parse_inline,
    read_config_file,
    resolve_source,
)


def test_inline_list_names_sources_and_revisions() -> None:
    specs = parse_inline(" best=weights/pix2pix , user/repo@v1.2 ,")
    assert specs == [ModelSpec("best", "weights/pix2pix"), ModelSpec("repo", "user/repo", "v1.2")]


def test_yaml_and_json_files_give_the_same_models(tmp_path: Path) -> None:
    models = [{"name": "a", "source": "weights/a"}, {"name": "b", "source": "user/b", "revision": "main"}]
    (tmp_path / "m.yaml").write_text(
        "models:\n  - name: a\n    source: weights/a\n  - name: b\n    source: user/b\n    revision: main\n"
    )
    (tmp_path / "m.json").write_text(json.dumps({"models": models}))
    expected = [ModelSpec("a", "weights/a"), ModelSpec("b", "user/b", "main")]
    assert read_config_file(tmp_path / "m.yaml") == expected
    assert read_config_file(tmp_path / "m.json") == expected
    assert configured_specs({"COLORLAB_MODELS": str(tmp_path / "m.json")})[0] == expected


def test_default_config_lists_the_bundled_weights() -> None:
    specs, origin = configured_specs({})
    assert origin == "space/models.yaml"
    assert [s.source for s in specs] == [
        "weights/colour_global",
        "weights/colour_l1",
        "weights/unet_l1",
        "weights/autoencoder",
        "weights/pix2pix",
        "weights/colour_hints",  # last: the default choice stays automatic (tests/test_app_hints.py)
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  - name: a\n    source: x\n    path: y\n", "unknown key"),
        ("models:\n  - name: a\n", "needs a 'source'"),
        ("models: {a: 1}\n", "'models:' list"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_bad_config_files_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_config_file(config)


def test_relative_folders_resolve_against_the_app_root_and_ids_go_to_the_hub(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    assert resolve_source("weights/not_trained_yet", tmp_path) == tmp_path / "weights/not_trained_yet"
    assert resolve_source("someone/colorizer", tmp_path) == "someone/colorizer"
    assert resolve_source("./local", tmp_path) == tmp_path / "local"
    assert resolve_source(str(tmp_path / "abs"), tmp_path) == tmp_path / "abs"


def test_failed_models_are_reported_and_the_rest_are_served(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    save_tiny_models(tmp_path, ["pix2pix_tiny"])
    create_model("unet_tiny").save_pretrained(tmp_path / "broken")
    config = json.loads((tmp_path / "broken/config.json").read_text())
    (tmp_path / "broken/config.json").write_text(json.dumps({**config, "architecture": "NoSuchNet"}))
    broken = tmp_path / "broken"
    specs = [
        ModelSpec("good", str(tmp_path / "pix2pix_tiny")),
        ModelSpec("missing", "weights/never_trained"),
        ModelSpec("broken", str(broken)),
        ModelSpec("offline", "someone/colorizer", "main"),  # HF_HUB_OFFLINE=1 in tests
    ]
    pool = ModelPool.load(specs, root=tmp_path)
    assert pool.names() == ["good"]
    assert not pool.fallback_used
    reasons = {failure.spec.name: failure.reason for failure in pool.failures}
    assert "does not exist yet" in reasons["missing"]
    assert "NoSuchNet" in reasons["broken"]
    assert "Hub" in reasons["offline"]
    notice = pool.notice_markdown()
    assert all(name in notice for name in ("missing", "broken", "offline"))


def test_untrained_fallback_is_labelled_and_deterministic() -> None:
    first = ModelPool.load([ModelSpec("gone", "/nonexistent/model")])
    second = ModelPool.load([])
    assert first.fallback_used and second.fallback_used
    assert first.names() == ["pix2pix_tiny (untrained)", "unet_tiny (untrained)", "autoencoder_tiny (untrained)"]
    assert "untrained" in first.notice_markdown()
    image = Image.new("L", (64, 48), 128)
    for name in first.names():
        a = first.get(name).colorize(image, working_size=64, saturation=1.0)
        b = second.get(name).colorize(image, working_size=64, saturation=1.0)
        assert a.tobytes() == b.tobytes()


def test_bad_names_in_the_config_are_reported_not_raised(tmp_path: Path) -> None:
    pool = ModelPool.load([ModelSpec("twin", "a"), ModelSpec("twin", "b")], root=tmp_path)
    assert "Two models are named 'twin'" in pool.config_error
    assert pool.fallback_used


@pytest.mark.parametrize("name", ["../weights/pix2pix", "someone/colorizer", "/etc/passwd", "", "PIX2PIX"])
def test_only_configured_names_can_be_selected(tmp_path: Path, name: str) -> None:
    save_tiny_models(tmp_path, ["pix2pix_tiny"])
    pool = ModelPool.load([ModelSpec("pix2pix", str(tmp_path / "pix2pix_tiny"))])
    with pytest.raises(ModelChoiceError, match="not one of the models"):
        pool.select(["pix2pix", name])
    with pytest.raises(ModelChoiceError, match="at least one"):
        pool.select([])


class SamplingColorizer(NetworkColorizer):
    """A network that declares `num_samples`, as samplers do: it draws its one colouring that many times."""

    @property
    def extra_options(self) -> dict[str, int]:
        return {"num_samples": 1}

    def predict_ab(self, l_norm, *, num_samples, **hooks):
        self.last_num_samples = num_samples
        return super().predict_ab(l_norm, **hooks).repeat_interleave(num_samples, dim=0)


def test_extra_options_reach_only_colorizers_that_declare_them() -> None:
    pool = ModelPool.load([])
    torch.manual_seed(0)
    sampler = SamplingColorizer(create_model("pix2pix_tiny"), name="sampler")
    pool.entries["sampler"] = PoolEntry("sampler", sampler, source="test")
    image = Image.new("L", (32, 32), 100)
    entry = pool.get("sampler")
    assert entry.draws_samples and entry.extra_options == {"num_samples": 1}
    drawn = entry.colorize_samples(image, working_size=32, saturation=1.0, options={"num_samples": 4, "x": 1})
    assert len(drawn) == 4 and sampler.last_num_samples == 4  # "x" is declared by no one: it is dropped
    assert entry.colorize(image, working_size=32, saturation=1.0, options={"num_samples": 4}).size == (32, 32)
    assert sampler.last_num_samples == 1  # colorize: one colouring
    # A plain colorizer ignores options it does not declare instead of failing, and draws one colouring.
    plain = pool.get("unet_tiny (untrained)")
    assert not plain.draws_samples and plain.extra_options == {}
    assert len(plain.colorize_samples(image, working_size=32, saturation=1.0, options={"num_samples": 4})) == 1


def test_entries_describe_their_colorizer_through_the_contract() -> None:
    entry = ModelPool.load([]).get("pix2pix_tiny (untrained)")
    assert entry.architecture == "UNetGenerator"
    assert entry.parameters == entry.colorizer.model.num_parameters() > 0
    assert entry.working_size_for(0) == entry.working_size_for(None) == entry.colorizer.native_working_size
    assert entry.working_size_for(96) == 96


def test_served_networks_run_on_the_precision_path_the_operator_asks_for(tmp_path: Path, monkeypatch) -> None:
    save_tiny_models(tmp_path, ["unet_tiny"])
    spec = [ModelSpec("unet", str(tmp_path / "unet_tiny"))]
    pool = ModelPool.load(spec)
    assert pool.entries["unet"].precision.startswith("unet: fp32 (auto: not measured")  # nothing recorded here
    monkeypatch.setenv("COLORLAB_PRECISION", "fp32")
    assert ModelPool.load(spec).entries["unet"].precision == "unet: fp32 (asked for)"
    monkeypatch.setenv("COLORLAB_PRECISION", "fp16")
    pool = ModelPool.load(spec)
    assert pool.names() != ["unet"]  # not served, and the reason is a sentence naming the setting
    assert any("COLORLAB_PRECISION" in failure.reason for failure in pool.failures)
