"""Simulated users: colour hints sampled from the true colours, for training hint models and for the hint curve.

Zhang et al. 2017 trained their user-guided colorizer on points revealed from the ground truth: a random number of
them (geometric, zero included, so the network still colorizes with no hints), each a small patch whose colour is
the mean true ab there. `sample_hint_map` does that for a training batch. A quarter of the points land on colour
edges (drawn in proportion to the ab gradient), where a user's click matters most and a patch mean mixes two
colours; the rest land anywhere.

`simulated_hints` is the same user for evaluation (the hint curve of `judge.evaluate --hints`): `Hint` objects in
the photo's own pixels, each coloured with the mean true Lab of its patch.

Everything is drawn from the `torch.Generator` passed in, so a run seeded per step resumes exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.base import HINT_CHANNELS
from models.color import AB_SCALE, rgb_to_lab
from models.hints import MAX_HINT_HALF_SIDE, Hint

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


# --- the simulated user of the hint curve (judge.hint_curve) -----------------------------------------------------
@dataclass(frozen=True)
class SimulatedHint:
    """One simulated click: the `Hint` a user would give, and the full-resolution patch its colour was taken from
    (where the hint curve measures how closely the output follows it)."""

    hint: Hint
    rows: slice
    columns: slice


def _footprint(start: int, stop: int, scale: float, limit: int) -> slice:
    """The full-resolution pixels that working pixels [start, stop) cover (at least one)."""
    first = min(max(math.floor(start / scale), 0), limit - 1)
    return slice(first, max(first + 1, min(math.ceil(stop / scale), limit)))


def simulated_hints(
    rgb: np.ndarray, count: int, generator: torch.Generator, *, grid: tuple[int, int]
) -> list[SimulatedHint]:
    """`count` hints a simulated user gives for one ground-truth photo (uint8 RGB (H, W, 3)): the training sampler's
    points (`hint_points`: a quarter on colour edges, patches 1x1 to 7x7), drawn on the photo's ab at the working
    `grid` (height, width) as training draws them, returned in full-resolution pixels with the mean true Lab of the
    patch they cover. Points are drawn one after another, so the first n of a draw of N are the draw of n."""
    height, width = rgb.shape[:2]
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb, dtype=np.float64)).permute(2, 0, 1) / 255.0)
    ab_grid = F.interpolate(lab[None, 1:], size=grid, mode="area")[0] / AB_SCALE
    scale_y, scale_x = grid[0] / height, grid[1] / width
    hints = []
    for row, column, half in hint_points(ab_grid, count, generator):
        rows = _footprint(max(row - half, 0), min(row + half + 1, grid[0]), scale_y, height)
        columns = _footprint(max(column - half, 0), min(column + half + 1, grid[1]), scale_x, width)
        colour = tuple(float(v) for v in lab[:, rows, columns].mean(dim=(1, 2)))
        hint = Hint(
            x=(column + 0.5) / scale_x - 0.5,
            y=(row + 0.5) / scale_y - 0.5,
            lab=(min(max(colour[0], 0.0), 100.0), colour[1], colour[2]),
            # half-side `half` at the working size again once models.hint_map scales it back
            radius=half / (scale_x * scale_y) ** 0.5,
        )
        hints.append(SimulatedHint(hint=hint, rows=rows, columns=columns))
    return hints
