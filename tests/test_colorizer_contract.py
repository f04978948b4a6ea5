"""The `Colorizer` contract (models.colorizer): one shape for network and diffusion colorizers, options resolved in
one place, and a request that decodes its photo once for every model.

.venv/bin/python -m pytest tests/test_colorizer_contract.py -q
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from app_support import save_tiny_models
from conftest import lightness_of
from PIL import Image

import models.colorizer as contract
from judge.ratings import RatingsStore
from models.colorizer import Colorizer, PreparedImage, prepare_image
from models.diffusion import DiffusionColorizer, DiffusionSettings, create_diffusion_components
from models.pipeline import NetworkColorizer
from models.registry import create_model
from space import app_logic as logic
from space.model_pool import ModelPool, PoolEntry, read_config_file
from space.outputs import OutputFolder


class Reddish(Colorizer):
    """The smallest colorizer: a constant colour, no network (what the contract asks of an implementation)."""

    @property
    def native_working_size(self) -> int:
        return 32

    def predict_ab(self, l_norm, *, progress_callback=None, cancel_event=None):
        ab = torch.tensor([0.3, 0.1]).view(1, 2, 1, 1)
        return ab.expand(l_norm.shape[0], 2, *l_norm.shape[-2:]).clone()


def _difference(first: Image.Image, second: Image.Image) -> int:
    return int(np.abs(np.asarray(first, dtype=int) - np.asarray(second, dtype=int)).max())


@pytest.fixture(scope="module")
def sampler() -> DiffusionColorizer:
    settings = DiffusionSettings(num_inference_steps=2, resolution=24, seed=7)
    return DiffusionColorizer(create_diffusion_components("tiny"), settings=settings, name="sampler")


def test_the_contract_cannot_be_used_half_implemented() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Colorizer(name="nothing")  # type: ignore[abstract]


def test_a_minimal_colorizer_gets_the_whole_pipeline(photo) -> None:
    image = photo("camera", 90).crop((0, 0, 90, 60))
    colorizer = Reddish(name="reddish")
    [only] = colorizer.colorize_samples(image)
    assert only.size == image.size and not colorizer.draws_samples and colorizer.extra_options == {}
    np.testing.assert_allclose(lightness_of(only), lightness_of(image), atol=0.5, rtol=0)
    assert np.asarray(only.convert("RGB"), dtype=int)[..., 0].mean() > np.asarray(image, dtype=int).mean()
    steadied = colorizer.colorize(image, keep_aspect=True, flip_average=True)  # a constant colour stays constant
    assert _difference(steadied, only) <= 1


def test_networks_and_samplers_answer_the_same_questions(sampler: DiffusionColorizer, photo) -> None:
    network = NetworkColorizer(create_model("unet_tiny"), name="unet")
    image = photo("astronaut", 48)
    for colorizer in (network, sampler):
        assert isinstance(colorizer, Colorizer)
        assert colorizer.native_working_size > 0 and colorizer.num_parameters() > 0 and colorizer.architecture
    assert len(network.colorize_samples(image, working_size=32)) == 1
    drawn = sampler.colorize_samples(image, num_samples=3)
    assert len(drawn) == 3 and {c.size for c in drawn} == {image.size}
    assert _difference(drawn[0], drawn[1]) > 20  # seeds 7 and 8
    # colorize is the first sample (its seed); batched convolutions may round one 8-bit step differently
    assert _difference(sampler.colorize(image), drawn[0]) <= 1
    assert _difference(sampler.colorize(image, seed=8), drawn[1]) <= 1


def test_options_and_their_defaults_are_resolved_in_one_place(sampler: DiffusionColorizer) -> None:
    defaults = sampler.extra_options
    assert defaults["seed"] == 7 and defaults["num_inference_steps"] == 2 and defaults["num_samples"] == 1
    assert sampler.resolve_options({"seed": 3, "prompt": None}) == {**defaults, "seed": 3}  # None: the default
    with pytest.raises(ValueError, match="does not take the option"):
        sampler.resolve_options({"sed": 3})
    with pytest.raises(ValueError, match="num_inference_steps must be"):
        sampler.resolve_options({"num_inference_steps": 0})
    network = NetworkColorizer(create_model("unet_tiny"), name="unet")
    with pytest.raises(ValueError, match="unet does not take the option"):
        network.colorize(Image.new("L", (32, 32)), num_samples=2)


@pytest.mark.parametrize("saturation", [-0.5, float("nan")])
def test_a_bad_saturation_is_one_sentence_for_every_colorizer(sampler: DiffusionColorizer, saturation: float) -> None:
    for colorizer in (Reddish(name="reddish"), sampler):
        with pytest.raises(ValueError, match="saturation must be >= 0"):
            colorizer.colorize(Image.new("L", (32, 32)), saturation=saturation)


def test_a_prepared_photo_is_passed_through_not_decoded_again(photo) -> None:
    prepared = prepare_image(photo("coffee", 64))
    assert prepare_image(prepared) is prepared and isinstance(prepared, PreparedImage)


def test_one_app_request_decodes_the_photo_once_for_all_models(tmp_path: Path, photo, monkeypatch) -> None:
    pool = ModelPool.load(read_config_file(save_tiny_models(tmp_path / "models")))
    pool.entries["reddish"] = PoolEntry("reddish", Reddish(name="reddish"), source="test")
    store = RatingsStore(tmp_path / "data", rate_limit=None)
    ctx = logic.AppContext.build(pool, store, outputs=OutputFolder(tmp_path / "out"), min_votes=3, seed=0)
    upload = tmp_path / "photo.png"
    photo("camera", 80).save(upload)
    decoded: list[object] = []
    original = contract.open_image
    monkeypatch.setattr(contract, "open_image", lambda source: decoded.append(source) or original(source))
    try:
        outcome = logic.colorize(ctx, upload, pool.names(), working_size=64)
    finally:
        store.close()
    assert len(outcome.results) == 4 and all(result.image is not None for result in outcome.results)
    assert len(decoded) == 1
