"""Simulated users: colour hints sampled from the true colours, for training hint models and for the hint curve.

Zhang et al. 2017 trained their user-guided colorizer on points revealed from the ground truth: a random number of
them (geometric, zero included, so the network still colorizes with no hints), each a small patch whose colour is
the mean true ab there. `sample_hint_map` does that for a training batch. A quarter of the points land on colour
edges (drawn in proportion to the ab gradient), where a user's click matters most and a patch mean mixes two
colours; the rest land anywhere.

Everything is drawn from the `torch.Generator` passed in, so a run seeded per step resumes exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.base import HINT_CHANNELS
from models.hints import MAX_HINT_HALF_SIDE

MAX_TRAINING_HINTS = 20
GEOMETRIC_P = 0.15  # P(0 hints) = 0.15, mean about 4.5 hints, P(10 or more) about 0.2
EDGE_SHARE = 0.25


def hint_count(generator: torch.Generator, *, p: float = GEOMETRIC_P, maximum: int = MAX_TRAINING_HINTS) -> int:
    """A geometric count on {0, 1, 2, ...} (success probability `p`), capped at `maximum`."""
    uniform = float(torch.rand((), generator=generator))
    count = int(torch.floor(torch.log1p(torch.tensor(-uniform)) / torch.log1p(torch.tensor(-p))))
    return min(count, maximum)


def _edge_strength(ab: torch.Tensor) -> torch.Tensor:
    """(2, H, W) ab -> (H, W) gradient magnitude, a little blurred: where colour edges are."""
    dx = F.pad((ab[:, :, 1:] - ab[:, :, :-1]).abs().sum(0), (0, 1))
    dy = F.pad((ab[:, 1:, :] - ab[:, :-1, :]).abs().sum(0), (0, 0, 0, 1))
    return F.avg_pool2d((dx + dy)[None, None], 5, stride=1, padding=2)[0, 0]


def hint_points(
    ab: torch.Tensor, count: int, generator: torch.Generator, *, edge_share: float = EDGE_SHARE
) -> list[tuple[int, int, int]]:
    """`count` hint patches (row, column, half-side) for one (2, H, W) ab image."""
    height, width = ab.shape[-2:]
    points = []
    edges = None
    for _ in range(count):
        half = int(torch.randint(0, MAX_HINT_HALF_SIDE + 1, (), generator=generator))
        if float(torch.rand((), generator=generator)) < edge_share:
            if edges is None:
                edges = _edge_strength(ab).flatten() + 1e-6
            index = int(torch.multinomial(edges, 1, generator=generator))
            row, column = divmod(index, width)
        else:
            row = int(torch.randint(0, height, (), generator=generator))
            column = int(torch.randint(0, width, (), generator=generator))
        points.append((row, column, half))
    return points


def paint_hints(ab: torch.Tensor, points: list[tuple[int, int, int]]) -> torch.Tensor:
    """(HINT_CHANNELS, H, W) hint map: each patch gets the mean of `ab` over the patch, the mask 1 there."""
    height, width = ab.shape[-2:]
    hint_map = ab.new_zeros(HINT_CHANNELS, height, width)
    for row, column, half in points:
        rows = slice(max(row - half, 0), min(row + half + 1, height))
        columns = slice(max(column - half, 0), min(column + half + 1, width))
        hint_map[:2, rows, columns] = ab[:, rows, columns].mean(dim=(1, 2))[:, None, None]
        hint_map[2, rows, columns] = 1.0
    return hint_map


def sample_hint_map(ab_norm: torch.Tensor, generator: torch.Generator, *, count: int | None = None) -> torch.Tensor:
    """(B, HINT_CHANNELS, H, W) hint maps for a batch of normalised ab: a geometric number of points per image
    (or exactly `count`), each the mean true colour of its patch."""
    ab = ab_norm.detach().float().cpu()
    maps = []
    for image in ab:
        number = hint_count(generator) if count is None else count
        maps.append(paint_hints(image, hint_points(image, number, generator)))
    return torch.stack(maps).to(ab_norm)
