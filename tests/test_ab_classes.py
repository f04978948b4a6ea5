"""Colour as classification (models.ab_classes): binning, soft targets, rebalancing, annealed-mean decoding, and a
tiny model that learns a colour with the 'classes' loss."""

from __future__ import annotations

import pytest
import torch

from models.ab_classes import (
    annealed_mean,
    bin_centres,
    class_prior,
    nearest_bin,
    rebalanced_cross_entropy,
    rebalancing_weights,
    soft_encode,
)
from models.registry import create_model


def test_bins_cover_the_ab_range_on_a_10_unit_grid():
    centres = bin_centres() * 110
    assert centres.shape == (529, 2)
    assert centres.min() == -110 and centres.max() == 110
    assert torch.allclose(centres[1] - centres[0], torch.tensor([0.0, 10.0]))


def test_soft_targets_reproduce_the_exact_colour_as_their_mean():
    ab = torch.rand(2, 2, 8, 8) * 2 - 1
    indices, weights = soft_encode(ab)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, 8, 8))
    mean = (bin_centres()[indices] * weights[..., None]).sum(dim=1).permute(0, 3, 1, 2)
    torch.testing.assert_close(mean, ab, atol=1e-5, rtol=0)


def test_annealed_mean_goes_from_the_mean_to_the_mode():
    logits = torch.full((1, 529, 1, 1), -10.0)
    red, blue = nearest_bin(torch.tensor([[[[0.5]], [[0.3]]]])), nearest_bin(torch.tensor([[[[-0.2]], [[-0.5]]]]))
    logits[0, red.item()] = 1.0
    logits[0, blue.item()] = 0.9
    mean = annealed_mean(logits, 1.0)[0, :, 0, 0]
    mode = annealed_mean(logits, 0.01)[0, :, 0, 0]
    torch.testing.assert_close(mode, bin_centres()[red.item()], atol=1e-3, rtol=0)
    assert 0 < mean[0] < 0.5  # between the two colours: the desaturated average a regressor would give
    with pytest.raises(ValueError, match="temperature must be > 0"):
        annealed_mean(logits, 0.0)


def test_rebalancing_weights_favour_rare_colours_and_average_one_under_the_prior():
    common = torch.zeros(1, 2, 16, 16)  # gray, everywhere
    rare = torch.zeros(1, 2, 16, 16)
    rare[..., :4, :4] = 0.5  # a small red patch
    prior = class_prior([common, rare])
    weights = rebalancing_weights(prior)
    assert (
        weights[nearest_bin(torch.full((1, 2, 1, 1), 0.5)).item()] > weights[nearest_bin(common[..., :1, :1]).item()]
    )
    assert weights.min() >= 0


def test_a_tiny_class_unet_learns_a_colour_with_the_rebalanced_loss():
    torch.manual_seed(0)
    model = create_model("unet_tiny", ab_classes=True, temperature=0.38)
    l_norm = torch.rand(4, 1, 32, 32) * 2 - 1
    target = torch.zeros(4, 2, 32, 32)
    target[:, 0], target[:, 1] = 0.4, 0.2  # one orange for every pixel
    weights = rebalancing_weights(class_prior([target, torch.zeros_like(target)]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = rebalanced_cross_entropy(model(l_norm, return_logits=True), target, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(l_norm)
    assert predicted.shape == target.shape
    assert (predicted - target).abs().mean() < 0.05, "decoded ab must reach the trained colour"


def test_regressors_have_no_logits():
    with pytest.raises(ValueError, match="regresses ab; it has no logits"):
        create_model("unet_tiny")(torch.zeros(1, 1, 16, 16), return_logits=True)


def test_prior_correction_divides_the_rebalancing_weights_back_out_and_is_saved(tmp_path):
    from models.hub import load_model

    model = create_model("unet_tiny", ab_classes=True, prior_correction=1.0)
    weights = torch.ones(529)
    rare = nearest_bin(torch.full((1, 2, 1, 1), 0.5)).item()
    weights[rare] = 8.0  # training boosted this rare colour 8x
    weights[0] = 0.0  # a bin no training pixel reached
    model.set_class_weights(weights)
    logits = torch.zeros(1, 529, 1, 1)
    corrected = torch.softmax(model.head.correct_prior(logits, 1.0), dim=1)[0, :, 0, 0]
    assert corrected[rare] < corrected[1] / 7  # the boost is removed
    assert corrected[0] == 0  # never chosen
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.prior_correction == 1.0
    torch.testing.assert_close(loaded.head.class_weights, weights)
    with pytest.raises(ValueError, match="prior_correction must be between 0 and 1"):
        create_model("unet_tiny", ab_classes=True, prior_correction=2.0)
