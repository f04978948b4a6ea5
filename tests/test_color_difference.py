"""Differentiable CIEDE2000 (models.color_difference): the published test pairs, scikit-image's implementation, and
gradients that stay finite where the formula has kinks (gray pixels, a perfect prediction).

.venv/bin/python -m pytest tests/test_color_difference.py -q -x
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000

from models.color_difference import ciede2000

# Sharma, Wu & Dalal (2005), table 1: pairs chosen to exercise every branch (hue wrap-around, gray axis, blue).
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
]


@pytest.mark.parametrize(("first", "second", "expected"), SHARMA_PAIRS)
def test_published_pairs(first, second, expected):
    value = ciede2000(
        torch.tensor([first], dtype=torch.float64), torch.tensor([second], dtype=torch.float64), channel_dim=-1
    )
    assert value.item() == pytest.approx(expected, abs=2e-4)


def test_matches_scikit_image_on_random_colours():
    rng = np.random.default_rng(0)
    low, high = [0.0, -100.0, -100.0], [100.0, 100.0, 100.0]
    first, second = rng.uniform(low, high, (4000, 3)), rng.uniform(low, high, (4000, 3))
    ours = ciede2000(torch.from_numpy(first), torch.from_numpy(second), channel_dim=-1).numpy()
    np.testing.assert_allclose(ours, deltaE_ciede2000(first, second), atol=1e-4)


def test_channel_first_images_and_symmetry():
    torch.manual_seed(0)
    first = torch.rand(2, 3, 5, 7, dtype=torch.float64) * torch.tensor([100.0, 160.0, 160.0]).view(1, 3, 1, 1)
    second = first + torch.randn_like(first) * 10
    forward, backward = ciede2000(first, second), ciede2000(second, first)
    assert forward.shape == (2, 5, 7)
    torch.testing.assert_close(forward, backward)


def test_gradients_are_finite_on_gray_pixels_and_at_the_truth():
    target = torch.tensor([[50.0, 0.0, 0.0], [60.0, 30.0, -20.0]]).view(2, 3, 1, 1)
    for start in (torch.zeros_like(target), target.clone()):
        start[:, 0] = target[:, 0]  # the lightness is given; only ab is predicted
        pred = start.requires_grad_()
        ciede2000(pred, target).sum().backward()
        assert torch.isfinite(pred.grad).all()
    # away from the truth the gradient points toward it: one small step lowers the difference
    pred = torch.tensor([[60.0, 10.0, 5.0]]).view(1, 3, 1, 1).requires_grad_()
    goal = torch.tensor([[60.0, 30.0, -20.0]]).view(1, 3, 1, 1)
    before = ciede2000(pred, goal)
    before.sum().backward()
    after = ciede2000(pred.detach() - 0.5 * pred.grad, goal)
    assert after.item() < before.item()
