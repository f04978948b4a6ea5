"""Test-time size averaging: a second working size whose prediction is resized to the first working shape and
averaged in ab (`size_average=` in the Colorizer contract, `--size_average` in the CLI), with flip averaging, hints,
batches and the CLI's folder path.

.venv/bin/python -m pytest tests/test_size_average.py -q
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import lightness_of
from PIL import Image

from models.batch import colorize_pipelined
from models.color import normalize_l
from models.colorize import main as colorize_main
from models.colorizer import Colorizer, prepare_image
from models.hint_map import encode_hints
from models.hints import Hint
from models.pipeline import NetworkColorizer
from models.registry import create_model

L_TOLERANCE = 0.5  # CIELAB L units, as in tests/test_pipeline.py


class SizeProbe(Colorizer):
    """Predicts a constant ab that depends only on the working width, and records every call's shapes."""

    def __init__(self, ab_for_width: dict[int, tuple[float, float]], *, samples: bool = False) -> None:
        super().__init__(name="probe")
        self.ab_for_width = ab_for_width
        self.samples = samples
        self.calls: list[dict[str, Any]] = []

    @property
    def native_working_size(self) -> int:
        return 64

    @property
    def extra_options(self) -> dict[str, Any]:
        return {"num_samples": 1} if self.samples else {}

    @property
    def takes_hints(self) -> bool:
        return True

    def predict_ab(self, l_norm: torch.Tensor, **options: Any) -> torch.Tensor:
        hint_map = options.get("hint_map")
        self.calls.append({"shape": tuple(l_norm.shape), "hint_map": hint_map})
        a, b = self.ab_for_width[l_norm.shape[-1]]
        ab = torch.tensor([a, b]).reshape(1, 2, 1, 1)
        return ab.expand(l_norm.shape[0], 2, *l_norm.shape[-2:]).clone()


def _tiny_network() -> NetworkColorizer:
    torch.manual_seed(0)
    return NetworkColorizer(create_model("unet_tiny").eval(), name="tiny")


def test_the_averaged_colouring_is_the_colouring_of_the_mean_prediction(photo) -> None:
    image = photo("astronaut", 120)
    probe = SizeProbe({64: (0.30, -0.10), 32: (0.10, 0.20)})
    mean = SizeProbe({64: (0.20, 0.05)})
    for keep_aspect in (False, True):
        averaged = probe.colorize(image, working_size=64, size_average=32, keep_aspect=keep_aspect, flip_average=True)
        expected = mean.colorize(image, working_size=64, keep_aspect=keep_aspect)
        assert np.array_equal(np.asarray(averaged), np.asarray(expected))
    # Off by default: one pass at the working size only.
    probe.calls.clear()
    probe.colorize(image, working_size=64)
    assert [call["shape"][-1] for call in probe.calls] == [64]


def test_a_networks_averaged_ab_is_the_mean_of_both_predictions_at_the_first_shape(photo) -> None:
    colorizer = _tiny_network()
    prepared = prepare_image(photo("coffee", 120))
    small = colorizer.working_lightness(prepared, 64)
    second = colorizer.working_lightness(prepared, 32)
    with torch.no_grad():
        first_ab = colorizer.predict_ab(normalize_l(small))
        second_ab = colorizer.predict_ab(normalize_l(second))
        averaged = colorizer.predict_working_ab([prepared], small, size_average=32)
    resized = F.interpolate(second_ab, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(averaged, 0.5 * (first_ab + resized))
    assert not torch.allclose(averaged, first_ab)  # the second size changed the colour
    result = colorizer.colorize(prepared, working_size=64, size_average=32)
    assert np.array_equal(np.asarray(result), np.asarray(colorizer.finish(prepared, small, averaged)))


@pytest.mark.parametrize("second", [32, 96])
def test_output_keeps_the_inputs_size_and_lightness(photo, second: int) -> None:
    colorizer = _tiny_network()
    image = photo("chelsea", 150)
    result = colorizer.colorize(image, working_size=64, size_average=second, keep_aspect=True, flip_average=True)
    assert result.size == image.size and result.mode == "RGB"
    np.testing.assert_allclose(lightness_of(result), lightness_of(image), atol=L_TOLERANCE, rtol=0)


def test_hints_are_encoded_again_at_the_second_size_and_mirrored_with_flip_average(photo) -> None:
    image = photo("astronaut", 120)
    hints = [Hint(x=30, y=40, rgb=(200, 30, 40), radius=6)]
    probe = SizeProbe({64: (0.3, 0.0), 32: (0.1, 0.0)})
    probe.colorize(image, working_size=64, size_average=32, flip_average=True, hints=hints)
    lightness = prepare_image(image).lightness
    assert [call["shape"] for call in probe.calls] == [(2, 1, 64, 64), (2, 1, 32, 32)]  # straight + mirrored
    for call, side in zip(probe.calls, (64, 32), strict=True):
        expected = encode_hints(hints, lightness, (side, side))
        torch.testing.assert_close(call["hint_map"], torch.cat([expected, expected.flip(-1)]))


def test_batches_and_the_pipelined_folder_path_average_the_same_way(photo, tmp_path: Path) -> None:
    colorizer = _tiny_network()
    images = [photo("astronaut", 100), photo("coffee", 90), photo("chelsea", 80)]
    one_by_one = [np.asarray(colorizer.colorize(image, working_size=64, size_average=32)) for image in images]
    batched = colorizer.colorize_batch(images, working_size=64, size_average=32, batch_size=2)
    assert all(np.array_equal(np.asarray(a), b) for a, b in zip(batched, one_by_one, strict=True))
    jobs = []
    for index, image in enumerate(images):
        image.save(tmp_path / f"{index}.png")
        jobs.append((tmp_path / f"{index}.png", tmp_path / f"{index}-out.png"))
    saved: dict[Path, np.ndarray] = {}
    results = colorize_pipelined(
        colorizer,
        jobs,
        lambda image, target: saved.__setitem__(target, np.asarray(image)),
        working_size=64,
        size_average=32,
        batch_size=2,
    )
    assert all(result.error is None for result in results)
    assert all(np.array_equal(saved[target], expected) for (_, target), expected in zip(jobs, one_by_one, strict=True))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("auto", "size_average must be a number of pixels"),
        ("big", "size_average must be a number of pixels"),
        (12.5, "size_average must be a whole number of pixels"),
        (True, "size_average must be a whole number of pixels"),
        (8, "size_average must be at least 16 pixels"),
        (64, "gives the same 64 px working side as the working size"),
    ],
)
def test_bad_values_are_refused_with_a_sentence_before_the_model_runs(photo, value, message: str) -> None:
    probe = SizeProbe({64: (0.0, 0.0)})
    with pytest.raises(ValueError, match=message):
        probe.colorize(photo("astronaut", 64), working_size="auto", size_average=value)
    assert probe.calls == []


def test_a_sampler_refuses_size_averaging() -> None:
    sampler = SizeProbe({64: (0.0, 0.0), 32: (0.0, 0.0)}, samples=True)
    with pytest.raises(ValueError, match=r"probe draws samples.*leave size_average off"):
        sampler.colorize(Image.new("L", (40, 40), 100), size_average=32)
    assert sampler.calls == []


def test_the_contract_says_which_colorizers_size_averaging_applies_to() -> None:
    """What evaluation's --size_average reads to skip a model instead of failing the run on it."""
    from judge.evaluate import GrayscaleBaseline

    assert SizeProbe({64: (0.0, 0.0)}).supports_size_average
    assert not SizeProbe({64: (0.0, 0.0)}, samples=True).supports_size_average
    assert not GrayscaleBaseline().supports_size_average


def test_the_cli_flag_averages_and_refuses_bad_values_in_a_sentence(photo, tmp_path: Path, capsys) -> None:
    model = tmp_path / "model"
    create_model("unet_tiny").save_pretrained(model)
    photo("astronaut", 80).save(tmp_path / "a.png")
    base = ["--model", str(model), str(tmp_path / "a.png"), "--working_size", "64"]
    assert colorize_main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert colorize_main([*base, "--out", str(tmp_path / "averaged"), "--size_average", "32"]) == 0
    with (
        Image.open(tmp_path / "plain" / "a_model.png") as plain,
        Image.open(tmp_path / "averaged" / "a_model.png") as av,
    ):
        assert av.size == plain.size == (80, 80)
        assert not np.array_equal(np.asarray(av), np.asarray(plain))
    capsys.readouterr()
    assert colorize_main([*base, "--out", str(tmp_path / "bad"), "--size_average", "tiny"]) == 2
    assert "error: --size_average must be a number of pixels" in capsys.readouterr().err
    assert colorize_main([*base, "--out", str(tmp_path / "same"), "--size_average", "64"]) == 2
    err = capsys.readouterr().err
    assert "error: size_average 64 gives the same 64 px working side" in err and "Traceback" not in err
