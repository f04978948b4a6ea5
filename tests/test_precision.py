"""Precision paths (models.precision_paths), BatchNorm folding, the measured choice and its cache (models.precision),
and the CLI's --precision."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab
from torch import nn

from models.bn_fold import fold_batchnorm
from models.color import AB_SCALE
from models.colorize import main as colorize_main
from models.pipeline import NetworkColorizer
from models.precision import apply_precision, choose_precision, pick, resolve_precision
from models.precision_cache import CACHE_ENV, read_choice, weights_digest
from models.precision_options import check_precision
from models.precision_paths import PrecisionError, cpu_supports_bf16, prepare_network, unavailable_reason
from models.precision_quality import ab_auc, resized, score_network, validation_photos
from models.registry import create_model

NETWORKS_WITH_BATCHNORM = ["pix2pix_tiny", "unet_tiny", "resunet_tiny", "autoencoder_tiny", "simple_cnn_tiny"]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def trained_looking(name: str, seed: int = 0) -> nn.Module:
    """A tiny network whose BatchNorms hold non-trivial statistics and affine terms (fresh ones are the identity,
    which would make folding look right whatever it did)."""
    torch.manual_seed(seed)
    model = create_model(name)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def smooth_l(batch: int = 2, side: int = 64, seed: int = 1) -> torch.Tensor:
    coarse = torch.rand((batch, 1, side // 8, side // 8), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")


def outputs(model: nn.Module, path: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        expected = model(x)
        got = prepare_network(copy.deepcopy(model), path)(x)
    return expected, got


@pytest.mark.parametrize("name", NETWORKS_WITH_BATCHNORM)
def test_folding_batchnorm_keeps_the_output_within_1e_4(name):
    model = trained_looking(name)
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = smooth_l()
    with torch.inference_mode():
        assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=0)


def test_folding_refuses_a_training_model():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(create_model("pix2pix_tiny").train())


@pytest.mark.parametrize("path", ["channels_last", "folded_bn"])
def test_fp32_paths_match_eager_fp32_within_1e_4(path):
    model = trained_looking("pix2pix_tiny")
    expected, got = outputs(model, path, smooth_l())
    assert got.dtype == torch.float32 and got.is_contiguous()
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bfloat16 instructions (the path is refused)")
def test_bf16_path_is_close_to_fp32():
    # bfloat16 keeps 8 mantissa bits (relative step 2^-8 = 0.4 %) in every weight and activation: over a few layers
    # a normalised ab of magnitude <= 1 moves by about 1e-2, so 0.05 (5.5 ab units) bounds it and 0.01 its mean
    model = trained_looking("pix2pix_tiny")
    expected, got = outputs(model, "bf16", smooth_l())
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() < 0.05
    assert (got - expected).abs().mean() < 0.01
    assert (got - expected).abs().max() > 0  # it really ran in bf16


def test_bf16_is_refused_with_a_sentence_where_the_cpu_lacks_it(monkeypatch):
    import models.precision_paths

    model = create_model("pix2pix_tiny")
    # both branches, whatever CPU runs the tests: the flags decide (oneDNN's own check can only veto)
    monkeypatch.setattr(models.precision_paths, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not cpu_supports_bf16()
    assert "no bfloat16 instructions" in unavailable_reason(model, "bf16")
    monkeypatch.setattr(models.precision_paths, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    if cpu_supports_bf16():  # oneDNN agrees on this machine's build
        assert unavailable_reason(model, "bf16") is None


def test_int8_path_is_close_to_fp32():
    pytest.importorskip("onnxruntime")
    # int8 activations have 256 levels over the calibrated range (about 2/256 for L in [-1, 1]) and per-channel
    # int8 weights: the output moves by a few 1e-2 in normalised ab (a few ab units), far more than fp32 rounding
    model = trained_looking("pix2pix_tiny")
    expected, got = outputs(model, "int8", smooth_l())
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().mean() < 0.03
    assert (got - expected).abs().max() < 0.2


def test_a_prepared_network_is_not_prepared_twice():
    model = prepare_network(trained_looking("pix2pix_tiny"), "folded_bn")
    with pytest.raises(PrecisionError, match="already runs as folded_bn"):
        prepare_network(model, "channels_last")


def test_pick_takes_the_fastest_path_within_the_quality_bound_and_never_compile():
    rows = {
        "fp32": {"ratio": 1.0, "ciede_change": 0.0},
        "folded_bn": {"ratio": 0.9, "ciede_change": 0.0},
        "bf16": {"ratio": 0.6, "ciede_change": 0.04},
        "int8": {"ratio": 0.3, "ciede_change": 0.2},  # fastest, but moves CIEDE2000 by 0.2: not chosen
        "compile": {"ratio": 0.2, "ciede_change": 0.0},  # compiles per shape: never chosen automatically
        "channels_last": {"skipped": "not measured"},
    }
    path, reason = pick(rows)
    assert path == "bf16"
    assert "int8 (CIEDE2000 +0.200)" in reason
    rows["bf16"]["ciede_change"] = -0.06
    assert pick(rows)[0] == "folded_bn"
    rows["int8"]["ciede_change"] = math.nan  # a path that produced NaN colours is not accurate
    assert pick(rows)[0] == "folded_bn"


def test_pick_keeps_fp32_when_no_path_gains_beyond_timing_noise():
    path, reason = pick({"fp32": {"ratio": 1.0, "ciede_change": 0.0}, "folded_bn": {"ratio": 0.99, "ciede_change": 0}})
    assert path == "fp32" and "0.99x" in reason


def test_ab_auc_agrees_with_the_trainers_metric():
    from judge.metrics import ab_auc as trainer_ab_auc

    rng = np.random.default_rng(0)
    pred, target = rng.uniform(-60, 60, (16, 16, 3)), rng.uniform(-60, 60, (16, 16, 3))
    assert ab_auc(pred, target) == pytest.approx(trainer_ab_auc(pred, target), abs=1e-12)


def test_choose_records_a_choice_within_the_bound_and_auto_applies_it(tmp_path):
    model = trained_looking("pix2pix_tiny")
    photos, source = validation_photos(2, folder=tmp_path / "no-corpus")  # scikit-image's photos
    assert "scikit-image" in source
    entry = choose_precision(
        model, photos=photos, photo_source=source, side=64, batches=(1,), rounds=1, paths=["folded_bn"], log=print
    )
    chosen = entry["path"]
    assert chosen in ("fp32", "folded_bn")
    assert abs(entry["rows"][chosen]["ciede_change"]) <= 0.05
    assert "ab_auc_change" in entry["rows"]["folded_bn"]
    assert read_choice(model)["path"] == chosen  # a fresh copy of the same weights finds it
    files = list((tmp_path / "cache").iterdir())
    assert [f.name for f in files] == ["precision.json"]
    assert json.loads(files[0].read_text())  # one readable JSON file, nothing else left behind
    colorizer = NetworkColorizer(copy.deepcopy(model), name="tiny")
    description = apply_precision(colorizer, "auto")
    assert description.startswith(f"tiny: {chosen} (auto: measured on this machine")
    assert getattr(colorizer.model, "colorlab_precision", "fp32") == chosen
    assert colorizer.colorize(Image.fromarray(photos[0])).size == Image.fromarray(photos[0]).size  # still colorizes


def test_auto_without_a_measurement_is_plain_fp32_and_says_so():
    model = trained_looking("pix2pix_tiny")
    colorizer = NetworkColorizer(copy.deepcopy(model), name="tiny")
    assert "not measured on this machine" in apply_precision(colorizer, "auto")
    with torch.inference_mode():
        x = smooth_l()
        assert torch.equal(colorizer.model(x), model(x))  # exactly the trained network


def test_new_weights_are_measured_again():
    first, second = trained_looking("pix2pix_tiny", seed=0), trained_looking("pix2pix_tiny", seed=1)
    assert weights_digest(first) == weights_digest(copy.deepcopy(first))
    assert weights_digest(first) != weights_digest(second)


def test_an_unreadable_cache_counts_as_empty(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "precision.json").write_text("{not json")
    model = trained_looking("pix2pix_tiny")
    assert read_choice(model) is None
    assert resolve_precision(model, "auto")[0] == "fp32"


def test_int8_is_refused_for_a_hint_model():
    reason = unavailable_reason(create_model("pix2pix_tiny", hints=True), "int8")
    assert "colour hints" in reason


@pytest.mark.parametrize("value", ["fp16", "", "int4"])
def test_bad_precision_values_get_a_sentence(value):
    with pytest.raises(ValueError, match="must be one of auto, fp32, bf16, int8"):
        check_precision(value, what="--precision")


def test_cli_refuses_a_bad_precision_before_loading_anything(tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(b"")
    assert colorize_main([str(tmp_path / "in.png"), "--out", str(tmp_path / "o"), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert "--precision must be one of auto, fp32, bf16, int8, got 'fp16'" in err
    assert "Traceback" not in err


def test_cli_says_which_precision_runs(tmp_path, tiny_model_dir, photo, capsys):
    photo("astronaut", 64).save(tmp_path / "in.png")
    args = [str(tmp_path / "in.png"), "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir)]
    assert colorize_main([*args, "--precision", "fp32"]) == 0
    assert "precision: tiny-colorizer: fp32 (asked for)" in capsys.readouterr().err
    assert colorize_main([*args, "--overwrite"]) == 0
    assert "fp32 (auto: not measured on this machine" in capsys.readouterr().err


class _FixedAb(nn.Module):
    """A "network" that answers each call with the next of the given normalised ab maps (score_network asks for the
    photos one at a time, in order)."""

    def __init__(self, answers: list[torch.Tensor]) -> None:
        super().__init__()
        self.answers = list(answers)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.answers.pop(0)


def test_quality_scores_a_perfect_colorizer_near_zero_and_grayscale_as_evaluation_does():
    from judge.metrics import ciede2000

    photos, _ = validation_photos(2)
    side = 64
    truths = [rgb2lab(resized(photo, side) / 255.0) for photo in photos]
    true_ab = [torch.from_numpy(t[..., 1:] / AB_SCALE).permute(2, 0, 1)[None].float() for t in truths]
    perfect = score_network(_FixedAb(true_ab), photos, side)
    assert perfect["ciede2000"] < 0.5 and perfect["ab_auc"] > 0.99  # only L's 8-bit rounding and fp32 remain
    gray = score_network(_FixedAb([torch.zeros_like(ab) for ab in true_ab]), photos, side)
    baseline = np.mean([ciede2000(t * [1, 0, 0], t) for t in truths])  # the photos' L with no colour
    assert gray["ciede2000"] == pytest.approx(baseline, abs=0.1)
    assert gray["ciede2000"] > perfect["ciede2000"] + 3  # colour the photos lack shows in the score
    assert all(np.abs(lab[..., 1:]).max() < 0.5 for lab in gray["lab"])  # the shown colours are the gray ones


def test_a_model_whose_int8_path_is_too_inaccurate_keeps_fp32(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import models.precision_quality

    # as on a fresh clone: no corpus, so int8 calibrates on scikit-image's bundled photos
    monkeypatch.setattr(models.precision_quality, "CORPUS", tmp_path / "no-corpus")
    # One feature map of the first convolution made 10^4 times larger than the others, and read by no later layer:
    # fp32 ignores it, but int8 quantizes each activation tensor with one scale, so the next convolution's input is
    # rounded in steps far larger than the other feature maps, which all become zero.
    model = trained_looking("pix2pix_tiny")
    outer = model.model.model  # [first conv, the inner levels, ReLU, last transposed conv, Tanh]
    with torch.no_grad():
        outer[0].weight[0] *= 1e4
        outer[1].model[1].weight[:, 0] = 0  # the next level's convolution does not read it
        outer[3].weight[0] = 0  # nor does the skip connection into the last layer
    photos, source = validation_photos(3, folder=tmp_path / "no-corpus")
    entry = choose_precision(
        model, photos=photos, photo_source=source, side=64, batches=(1,), rounds=1, paths=["int8"]
    )
    assert abs(entry["rows"]["int8"]["ciede_change"]) > 0.05
    assert entry["path"] == "fp32"
    assert "too inaccurate: int8" in entry["reason"]
    assert read_choice(model)["path"] == "fp32"
