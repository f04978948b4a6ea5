"""The blotch metric (judge.artifacts): it must flag compact colour islands the truth lacks, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color, data

from judge.artifacts import blotch_mask, blotch_share
from judge.metrics import image_metrics


@pytest.fixture(scope="module")
def chelsea_lab() -> np.ndarray:
    return color.rgb2lab(data.chelsea()[::2, ::2])  # 150 x 225, a real photo with smooth and textured areas


def _with_blotch_grid(lab: np.ndarray, *, period: int = 40, radius: int = 6, ab=(-25.0, -15.0)) -> np.ndarray:
    """The first bundled pix2pix's failure, synthesised: a regular grid of teal discs painted into ab."""
    out = lab.copy()
    yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]]
    for cy in range(period // 2, lab.shape[0], period):
        for cx in range(period // 2, lab.shape[1], period):
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            out[disc, 1], out[disc, 2] = ab
    return out


def test_a_perfect_or_gray_colouring_has_no_blotches(chelsea_lab):
    assert blotch_share(chelsea_lab, chelsea_lab) == 0.0
    gray = chelsea_lab.copy()
    gray[..., 1:] = 0
    assert blotch_share(gray, chelsea_lab) == 0.0  # dull is another failure (colourfulness), not blotches


def test_a_grid_of_teal_discs_is_flagged_where_it_was_painted(chelsea_lab):
    blotched = _with_blotch_grid(chelsea_lab)
    mask = blotch_mask(blotched, chelsea_lab)
    painted = np.any(np.abs(blotched - chelsea_lab) > 1e-6, axis=-1)
    assert blotch_share(blotched, chelsea_lab) > 3.0
    assert mask[painted].mean() > 0.8, "most painted pixels must be inside flagged islands"
    # only a thin halo around each disc (where the neighbourhood blur mixes the disc in) may be flagged
    assert mask[~painted].mean() < 0.03, "pixels away from the discs must not be flagged"


def test_a_global_colour_cast_and_large_wrong_regions_are_not_blotches(chelsea_lab):
    cast = chelsea_lab.copy()
    cast[..., 1] += 20  # everything too red: CIEDE2000 counts it, it is not a blotch
    assert blotch_share(cast, chelsea_lab) == 0.0
    half = chelsea_lab.copy()
    half[:, : half.shape[1] // 2, 2] -= 40  # half the picture wrongly blue: a large region, not an island
    assert blotch_share(half, chelsea_lab) < 0.5


def test_colour_islands_the_ground_truth_has_too_are_not_blotches(chelsea_lab):
    # A red cap on a gray coat is a compact island in the prediction *and* in the truth: a correct colouring.
    truth = _with_blotch_grid(chelsea_lab, ab=(40.0, 30.0))
    assert blotch_share(truth, truth) == 0.0
    assert blotch_share(_with_blotch_grid(chelsea_lab, ab=(38.0, 28.0)), truth) == 0.0


def test_single_noisy_pixels_are_not_blotches(chelsea_lab):
    noisy = chelsea_lab.copy()
    rng = np.random.default_rng(0)
    spots = rng.random(noisy.shape[:2]) < 0.002
    noisy[spots, 1] += 60
    assert blotch_share(noisy, chelsea_lab) < 0.05


def test_blotches_are_part_of_every_metric_row():
    rgb = data.astronaut()[::8, ::8]
    scores = image_metrics(rgb, rgb)
    assert scores["blotches"] == 0.0


def test_shape_mismatch_is_one_sentence(chelsea_lab):
    with pytest.raises(ValueError, match="expected two \\(H, W, 3\\) Lab images of one shape"):
        blotch_mask(chelsea_lab, chelsea_lab[:10])
