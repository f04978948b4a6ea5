"""Blotch metric: the share of an image covered by compact colour islands that the ground truth does not have.

    from judge.artifacts import blotch_share, blotch_mask
    share = blotch_share(pred_lab, target_lab)   # percent of pixels, 0 for a clean colouring

Colour metrics averaged over pixels (CIEDE2000, ab AuC) barely move when a colorizer paints a grid of small
teal spots on a sky: the spots are a few percent of the pixels, and a dull brown guess elsewhere costs as
much. People see the spots at once. This metric looks for exactly that failure:

1. how far each pixel's ab departs from its neighbourhood, ``|ab - blur(ab)|`` (a Gaussian ``sigma`` of
   1/24 of the short side, so a blotch of up to about a tenth of the image stands out from its surroundings);
2. pixels where the prediction departs by more than ``threshold`` ab units *and* by ``threshold`` more than the
   ground truth does there (a real red cap on a gray coat is a departure the truth has too: not a blotch);
3. connected islands of those pixels that are compact: between 0.02 % and 2 % of the image, filling at least
   30 % of their bounding box, at most 4 times longer than wide. Single noisy pixels, large wrongly coloured
   regions and the thin strip along the edge of one are other failures, measured by the other metrics.

The result is the percentage of the image's pixels inside such islands. Measured on the first bundled models
(32 validation photos, 256-px working size; see docs/colour-quality.md): it separates the blotchy pix2pix
from the clean L1 U-Net by an order of magnitude.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BLOTCH_THRESHOLD = 12.0  # ab units; ~5 just-noticeable differences, well above JPEG chroma noise
MIN_ISLAND = 2e-4  # share of the image: smaller islands are pixel noise, not blotches
MAX_ISLAND = 2e-2  # larger islands are wrongly coloured regions, which CIEDE2000 already counts
SIGMA_FRACTION = 1 / 24  # neighbourhood size relative to the short side
MIN_FILL = 0.3  # share of its bounding box an island covers (a disc: 0.79; a ring or a diagonal strip: less)
MAX_ELONGATION = 4.0  # longer side / shorter side of the bounding box


def _ab_departure(lab: np.ndarray, sigma: float) -> np.ndarray:
    ab = lab[..., 1:].astype(np.float64)
    background = np.stack([ndimage.gaussian_filter(ab[..., c], sigma, mode="reflect") for c in range(2)], axis=-1)
    return np.sqrt(((ab - background) ** 2).sum(axis=-1))


def blotch_mask(pred_lab: np.ndarray, target_lab: np.ndarray, *, threshold: float = BLOTCH_THRESHOLD) -> np.ndarray:
    """Boolean (H, W) mask of the pixels inside compact colour islands the ground truth does not have."""
    if pred_lab.shape != target_lab.shape or pred_lab.ndim != 3 or pred_lab.shape[-1] != 3:
        raise ValueError(
            "blotch_mask: expected two (H, W, 3) Lab images of one shape, "
            f"got {pred_lab.shape} and {target_lab.shape}."
        )
    height, width = pred_lab.shape[:2]
    sigma = max(1.0, min(height, width) * SIGMA_FRACTION)
    departure = _ab_departure(pred_lab, sigma)
    truth_departure = _ab_departure(target_lab, sigma)
    candidates = (departure > threshold) & (departure > truth_departure + threshold)
    labels, count = ndimage.label(candidates)
    if count == 0:
        return candidates
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    pixels = height * width
    keep = (areas >= MIN_ISLAND * pixels) & (areas <= MAX_ISLAND * pixels)
    keep[0] = False
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if keep[index] and box is not None:
            box_height, box_width = box[0].stop - box[0].start, box[1].stop - box[1].start
            # compact: fills its bounding box and is not a thin strip (the edge of a wrongly coloured region)
            fill = areas[index] / (box_height * box_width)
            keep[index] = fill >= MIN_FILL and max(box_height, box_width) <= MAX_ELONGATION * min(
                box_height, box_width
            )
    return keep[labels]


def blotch_share(pred_lab: np.ndarray, target_lab: np.ndarray, *, threshold: float = BLOTCH_THRESHOLD) -> float:
    """Percentage of pixels inside compact colour islands absent from the ground truth (0 = no blotches)."""
    return float(100.0 * blotch_mask(pred_lab, target_lab, threshold=threshold).mean())
