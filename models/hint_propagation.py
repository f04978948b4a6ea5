"""Hint propagation: after a hint model's forward pass, spread what it still gets wrong at each hint to the pixels
that resemble that hint's place (near it, and of a similar lightness).

A network trained for an hour on a CPU learns to take hints only slowly: on the validation split 10 true-colour
points moved its CIEDE2000 by tenths (docs/colour-hints.md). The classic remedy is edge-aware propagation of user
colour (Levin et al. 2004 propagate scribbles along similar intensities). Here it corrects the network instead of
replacing it: for each hinted patch k, the residual r_k = hint ab - predicted ab (patch means) is added to every
pixel p with the bilateral weight

    w_k(p) = exp(-|p - c_k|^2 / (2 sigma_space^2) - (L(p) - L_k)^2 / (2 sigma_lightness^2))

normalised over the hints (so a pixel between two hints takes a blend) and faded out where no hint is close
(weight / (weight + `fade`)). At a hint the output equals the hint; far from every hint it is the network's colour.
Positions are in units of the working image's side, lightness in normalised L (L / 50 - 1). The defaults were
chosen on the validation split (a grid over sigma_space 0.1-0.4, sigma_lightness 0.05-0.14 and fade 0.02-0.2 with
the default colorizer and 10 true-colour points: CIEDE2000 12.03 without hints, 6.21 at these settings, 8.73 at the
narrowest); a model's config (`colorlab.hint_propagation`) may set its own or turn it off.

Lightness alone does not stop at edges: where two regions have about the same lightness (a lawn in front of pale
stone), a hint on one paints the other. With `geodesic` > 0 the distance |p - c_k| is replaced by the geodesic
distance from the hinted patch (Criminisi et al. 2008, GeoS): the cheapest 8-connected path, each step costing
sqrt(step^2 + (geodesic * dL)^2) on L blurred by one grid pixel (so texture is not taken for an edge), so a path
that crosses a lightness edge pays for it even when both sides are equally light, while a smooth region costs about
its Euclidean length; `geodesic` is the distance, in image sides, that a lightness step of 1 (50 CIELAB units)
costs. The distances are computed without
gradients (they depend on L and the hint positions only) by raster sweeps of a min-plus relaxation
(`geodesic_distances`), on a grid of at most GEODESIC_GRID pixels a side (larger working sizes are area-averaged to
it and the distances resized back). `geodesic` 0, or a config without the key, is the plain bilateral spread above.
Measured on the bundled hint model (docs/colour-quality.md, section 6) it stops the bleed and keeps each point's
colour closer, but colours the validation split worse with 10 points (5.88 at 0.5 against 5.59), because most of
what a point is worth there is its colour carried far; the bundled model keeps the bilateral spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


@dataclass(frozen=True)
class HintPropagation:
    """Edge-aware spreading of the residual at each hint (see the module docstring)."""

    sigma_space: float = 0.25  # of the working image's side
    sigma_lightness: float = 0.14  # normalised L: 7 CIELAB lightness units
    fade: float = 0.02  # total weight at which a pixel takes half of the hints' correction
    geodesic: float = 0.0  # cost of a lightness step relative to a spatial one; 0: Euclidean distance (bilateral)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if name in _MAY_BE_ZERO:
                if not (number and value >= 0):
                    raise ValueError(f"hint_propagation.{name} must be a number >= 0 (0 turns it off), got {value!r}.")
            elif not (number and value > 0):
                raise ValueError(f"hint_propagation.{name} must be a positive number, got {value!r}.")

    @classmethod
    def from_config(cls, block: Any) -> HintPropagation | None:
        """The settings saved in a config's colorlab block: an object of them, or false/absent for none."""
        if block is None or block is False:
            return None
        if block is True:
            return cls()
        if not isinstance(block, Mapping):
            raise ValueError(f"colorlab.hint_propagation must be an object of settings or false, got {block!r}.")
        unknown = sorted(set(block) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"colorlab.hint_propagation has unknown setting(s) {', '.join(unknown)}.")
        return cls(**block)

    def to_config(self) -> dict[str, float]:
        """The settings as saved; `geodesic` only when on, so a config that does not use it stays readable by
        versions that do not know it."""
        settings = asdict(self)
        for name in _MAY_BE_ZERO:
            if settings[name] == 0:
                del settings[name]
        return settings


_MAY_BE_ZERO = ("geodesic",)  # settings whose 0 means "off" (absent from a saved config: off)
GEODESIC_GRID = 256  # largest side the geodesic distances are computed at (the native working size is 192)
_GEODESIC_BLUR = 1.0  # grid pixels of Gaussian blur on L before its steps are costed
_GEODESIC_ROUNDS = 4  # at most this many rounds of the four sweeps; they stop early once nothing changes


def saved_propagation(model: Any) -> HintPropagation | None:
    """The propagation a network is served with: a hint model's saved `colorlab.hint_propagation` (None for a model
    without hint inputs, or with the setting turned off). The pipeline and the trainer's served loss both read it."""
    if not model.takes_hints:
        return None
    return HintPropagation.from_config(model.colorlab.get("hint_propagation"))


def propagate_hint_residuals(
    l_norm: torch.Tensor, ab_norm: torch.Tensor, hint_map: torch.Tensor, settings: HintPropagation
) -> torch.Tensor:
    """(B, 2, h, w) ab corrected towards the hints of `hint_map` (B, 3, h, w); images without hints are unchanged."""
    corrected = ab_norm.clone()
    for index in range(ab_norm.shape[0]):
        corrected[index] = _propagate_one(l_norm[index, 0], ab_norm[index], hint_map[index], settings)
    return corrected


def _propagate_one(
    lightness: torch.Tensor, ab: torch.Tensor, hint_map: torch.Tensor, settings: HintPropagation
) -> torch.Tensor:
    mask = (hint_map[2] > 0).cpu().numpy()
    labels, count = ndimage.label(mask)  # overlapping or touching patches count as one hint
    if count == 0:
        return ab
    height, width = lightness.shape
    side = float(max(height, width))
    rows = torch.arange(height, dtype=torch.float32)[:, None] / side
    columns = torch.arange(width, dtype=torch.float32)[None, :] / side
    lightness = lightness.float().cpu()
    ab_cpu = ab.float().cpu()
    correction = torch.zeros(2, height, width)
    total = torch.zeros(height, width)
    labels_t = torch.from_numpy(labels.astype(np.int64))
    patches = [labels_t == label for label in range(1, count + 1)]
    if settings.geodesic > 0:
        distances = geodesic_distances(lightness, patches, settings.geodesic)
    for index, patch in enumerate(patches):
        residual = hint_map[:2].float().cpu()[:, patch].mean(1) - ab_cpu[:, patch].mean(1)
        centre_lightness = lightness[patch].mean()
        if settings.geodesic > 0:
            distance = distances[index] ** 2
        else:
            row, column = rows.expand(height, width)[patch].mean(), columns.expand(height, width)[patch].mean()
            distance = (rows - row) ** 2 + (columns - column) ** 2
        weight = torch.exp(
            -distance / (2 * settings.sigma_space**2)
            - (lightness - centre_lightness) ** 2 / (2 * settings.sigma_lightness**2)
        )
        correction += weight * residual[:, None, None]
        total += weight
    blend = correction / total.clamp(min=1e-6) * (total / (total + settings.fade))
    return (ab_cpu + blend).clamp(-1, 1).to(ab)


def geodesic_distances(lightness: torch.Tensor, patches: Sequence[torch.Tensor], strength: float) -> torch.Tensor:
    """(K, h, w) geodesic distance from each of the K boolean (h, w) `patches` over the (h, w) normalised L, in units
    of the image's side: the cheapest 8-connected path, a step costing sqrt(step^2 + (strength * dL)^2) on L blurred
    by _GEODESIC_BLUR grid pixels.

    Above GEODESIC_GRID pixels a side, L is area-averaged to that grid (a step edge keeps its full height across
    the cells it falls in) and the distances are resized back bilinearly."""
    height, width = lightness.shape
    scale = min(1.0, GEODESIC_GRID / max(height, width))
    grid = (max(round(height * scale), 1), max(round(width * scale), 1))
    coarse_l = lightness.float()
    seeds = torch.stack(list(patches)).float()
    if grid != (height, width):
        coarse_l = F.adaptive_avg_pool2d(coarse_l[None, None], grid)[0, 0]
        seeds = F.adaptive_max_pool2d(seeds[None], grid)[0]
    with torch.no_grad():
        # texture is not an edge: a slight blur keeps grass or foliage from costing like a boundary at every pixel
        smooth = ndimage.gaussian_filter(coarse_l.numpy(), _GEODESIC_BLUR)
        distance = _min_plus_sweeps(smooth, seeds.numpy() > 0, strength * max(grid))
    result = torch.from_numpy(distance) / max(grid)  # pixels of the grid -> units of the side
    if grid != (height, width):
        result = F.interpolate(result[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return result


def _min_plus_sweeps(lightness: np.ndarray, seeds: np.ndarray, strength: float) -> np.ndarray:
    """(K, h, w) path costs in grid pixels from the (K, h, w) boolean seeds: raster sweeps down, up, right and left
    (each relaxing the three neighbours behind it, vectorised over the hints and the other axis), repeated until a
    round changes nothing or after _GEODESIC_ROUNDS rounds. `strength`: the cost of a lightness step of 1, in grid
    pixels."""
    lightness = lightness.astype(np.float32)
    by_rows = _step_costs(lightness, strength)
    by_columns = _step_costs(np.ascontiguousarray(lightness.T), strength)  # the column sweeps: the transposed grid
    distance = np.where(seeds, 0.0, np.inf).astype(np.float32)
    for _ in range(_GEODESIC_ROUNDS):
        before = distance.copy()
        _sweep_down_and_up(distance, *by_rows)
        _sweep_down_and_up(distance.transpose(0, 2, 1), *by_columns)
        if np.array_equal(before, distance):
            break
    return distance


def _step_costs(lightness: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cost of each step between row r and row r+1: straight down ((h-1, w)), down-right from (r, c) to
    (r+1, c+1) and down-left from (r, c+1) to (r+1, c) (both (h-1, w-1))."""
    straight = np.hypot(1.0, strength * (lightness[1:] - lightness[:-1]))
    down_right = np.hypot(np.sqrt(2.0), strength * (lightness[1:, 1:] - lightness[:-1, :-1]))
    down_left = np.hypot(np.sqrt(2.0), strength * (lightness[1:, :-1] - lightness[:-1, 1:]))
    return straight.astype(np.float32), down_right.astype(np.float32), down_left.astype(np.float32)


def _sweep_down_and_up(
    distance: np.ndarray, straight: np.ndarray, down_right: np.ndarray, down_left: np.ndarray
) -> None:
    """A sweep down then up the rows of the (K, h, w) `distance` view, in place (costs from `_step_costs`)."""
    _sweep_rows(distance, straight, down_right, down_left)
    # upwards is downwards on the flipped grid: a down-left step read backwards is a down-right one, and vice versa
    _sweep_rows(distance[:, ::-1], straight[::-1], down_left[::-1], down_right[::-1])


def _sweep_rows(distance: np.ndarray, straight: np.ndarray, from_left: np.ndarray, from_right: np.ndarray) -> None:
    """One sweep down the rows of the (K, h, w) `distance` view, in place: row r takes the cheaper of itself and
    row r-1 plus the step cost, straight (`straight[r-1]`), from (r-1, c-1) (`from_left[r-1]`) or from (r-1, c+1)
    (`from_right[r-1]`)."""
    for row in range(1, distance.shape[1]):
        previous, current = distance[:, row - 1], distance[:, row]
        np.minimum(current, previous + straight[row - 1], out=current)
        np.minimum(current[:, 1:], previous[:, :-1] + from_left[row - 1], out=current[:, 1:])
        np.minimum(current[:, :-1], previous[:, 1:] + from_right[row - 1], out=current[:, :-1])
