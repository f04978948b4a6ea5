"""The geodesic hint propagation (`hint_propagation.geodesic`): a hint's colour stops at a lightness edge even
between two regions of the same lightness, each hint keeps its colour at its point, a config without the setting
spreads exactly as the bilateral propagation always did, and the served training loss stays differentiable."""

from __future__ import annotations

import math

import pytest
import torch

import models.hint_propagation as hint_propagation
from models.base import HINT_CHANNELS
from models.hint_propagation import HintPropagation, geodesic_distances, propagate_hint_residuals, saved_propagation
from models.registry import create_model
from trainer.hint_training import served_ab

OLD_BLOCK = {"fade": 0.02, "sigma_lightness": 0.14, "sigma_space": 0.25}  # a config saved before `geodesic`
GEODESIC = HintPropagation(**OLD_BLOCK, geodesic=2.0)


def _fenced_field(size: int = 48) -> torch.Tensor:
    """(1, 1, size, size) normalised L: two equally light halves split by a dark fence two pixels wide."""
    l_norm = torch.zeros(1, 1, size, size)
    l_norm[..., size // 2 - 1 : size // 2 + 1] = -0.9
    return l_norm


def _hint_map(size: int, *patches: tuple[int, int, float, float]) -> torch.Tensor:
    """A hint map with a 3x3 patch of colour (a, b) centred at each (row, column)."""
    hint_map = torch.zeros(1, HINT_CHANNELS, size, size)
    for row, column, a, b in patches:
        hint_map[0, 0, row - 1 : row + 2, column - 1 : column + 2] = a
        hint_map[0, 1, row - 1 : row + 2, column - 1 : column + 2] = b
        hint_map[0, 2, row - 1 : row + 2, column - 1 : column + 2] = 1.0
    return hint_map


def test_a_hint_stays_on_its_side_of_an_edge_between_regions_of_the_same_lightness():
    l_norm, predicted = _fenced_field(), torch.zeros(1, 2, 48, 48)
    hint_map = _hint_map(48, (24, 12, 0.4, -0.2))
    bilateral = propagate_hint_residuals(l_norm, predicted, hint_map, HintPropagation(**OLD_BLOCK))
    geodesic = propagate_hint_residuals(l_norm, predicted, hint_map, GEODESIC)
    # the right half is as light as the hinted left half: lightness alone paints it, the fence stops the geodesic
    assert float(bilateral[0, 0, 24, 36]) > 0.15
    assert float(geodesic[0, :, :, 25:].abs().max()) < 0.02
    # on the hint's own side it still spreads most of the way, as the bilateral one does
    assert float(geodesic[0, 0, 4, 4]) > 0.25 and float(geodesic[0, 1, 44, 20]) < -0.12


def test_each_hint_takes_its_own_colour_at_its_point_and_its_side():
    l_norm, predicted = _fenced_field(), torch.full((1, 2, 48, 48), 0.1)
    hint_map = _hint_map(48, (10, 10, 0.5, 0.3), (36, 38, -0.4, 0.2))
    out = propagate_hint_residuals(l_norm, predicted, hint_map, GEODESIC)
    assert torch.allclose(out[0, :, 10, 10], torch.tensor([0.5, 0.3]), atol=0.02)
    assert torch.allclose(out[0, :, 36, 38], torch.tensor([-0.4, 0.2]), atol=0.02)
    assert float(out[0, 0, 40, 8]) > 0.3 and float(out[0, 0, 8, 40]) < -0.2  # each half follows its own hint
    assert torch.equal(propagate_hint_residuals(l_norm, predicted, torch.zeros_like(hint_map), GEODESIC), predicted)


def test_a_config_without_the_setting_spreads_exactly_as_the_bilateral_formula():
    settings = HintPropagation.from_config(OLD_BLOCK)
    assert settings.geodesic == 0 and settings.to_config() == OLD_BLOCK  # saved again, the same block
    l_norm = torch.linspace(-1, 1, 32 * 32).reshape(1, 1, 32, 32)
    predicted = torch.zeros(1, 2, 32, 32)
    out = propagate_hint_residuals(l_norm, predicted, _hint_map(32, (8, 20, 0.3, -0.1)), settings)
    rows, columns = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centre = l_norm[0, 0, 7:10, 19:22].mean()
    weight = torch.exp(
        -((rows - 8) ** 2 + (columns - 20) ** 2) / 32**2 / (2 * 0.25**2) - (l_norm[0, 0] - centre) ** 2 / (2 * 0.14**2)
    )
    expected = torch.tensor([0.3, -0.1])[:, None, None] * weight / (weight + 0.02)
    assert torch.allclose(out[0], expected, atol=1e-5)


def test_the_setting_round_trips_and_bad_values_are_refused_with_a_sentence():
    assert HintPropagation.from_config(GEODESIC.to_config()) == GEODESIC
    network = create_model("unet_tiny", hints=True)
    network.colorlab["hint_propagation"] = GEODESIC.to_config()
    assert saved_propagation(network) == GEODESIC  # what the pipeline and the served loss read
    assert GEODESIC.to_config() == {**OLD_BLOCK, "geodesic": 2.0}
    for bad in (-1, "strong", True, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^hint_propagation\.geodesic must be a number >= 0 \(0 turns it off\)"):
            HintPropagation.from_config({**OLD_BLOCK, "geodesic": bad})


def test_geodesic_distance_goes_round_an_edge_and_matches_euclid_without_one(monkeypatch):
    seed = torch.zeros(40, 40, dtype=torch.bool)
    seed[5, 10] = True
    flat = geodesic_distances(torch.zeros(40, 40), [seed], 2.0)[0] * 40
    assert float(flat[5, 30]) == pytest.approx(20.0, abs=0.01)  # a straight run costs its length
    closed = torch.zeros(40, 40)
    closed[:, 20] = 1.0  # a light wall from top to bottom
    gap = closed.clone()
    gap[30:, 20] = 0.0  # the same wall with a gap at the bottom
    across = float(geodesic_distances(closed, [seed], 2.0)[0, 5, 30]) * 40
    round_it = float(geodesic_distances(gap, [seed], 2.0)[0, 5, 30]) * 40
    assert round_it > 2 * 26 and across > round_it + 10  # the way round through the gap, dearer than a straight run
    # a working size above the grid is measured on a coarser one and resized back: the wall is still felt (less:
    # averaged into wider cells, a one-pixel wall is half as high)
    monkeypatch.setattr(hint_propagation, "GEODESIC_GRID", 20)
    coarse = geodesic_distances(gap, [seed], 2.0)[0] * 40
    assert coarse.shape == (40, 40) and float(flat[5, 30]) + 10 < float(coarse[5, 30]) < across


def test_the_served_loss_with_the_geodesic_spread_passes_gradients_to_the_network():
    l_norm = _fenced_field(32)
    ab = torch.zeros(1, 2, 32, 32, requires_grad=True)
    served = served_ab(l_norm, ab, _hint_map(32, (16, 6, 0.3, -0.2)), GEODESIC)
    assert torch.allclose(served[0, :, 16, 6], torch.tensor([0.3, -0.2]), atol=0.01)
    served[0, :, :, :12].sum().backward()
    assert ab.grad is not None and float(ab.grad.abs().sum()) > 0
