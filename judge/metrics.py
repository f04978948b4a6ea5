"""Weight-free colour metrics on numpy images (numpy in, float out), shared by the trainer and `judge.evaluate`.

    from judge.metrics import image_metrics, bootstrap_mean_ci
    scores = image_metrics(pred_rgb_uint8, target_rgb_uint8)   # {"psnr": ..., "ciede2000": ..., ...}
    mean, low, high = bootstrap_mean_ci([s["psnr"] for s in per_image])

The metrics' names, directions and display formats are one table, `models.metric_table.METRICS`.

Conventions (so numbers are comparable across runs and papers):
- RGB inputs are (H, W, 3), either uint8 in [0, 255] or float in [0, 1]; Lab inputs are (H, W, 3) CIELAB
  (L in [0, 100], a/b roughly [-110, 110]) as produced by `skimage.color.rgb2lab`, which `models.color`
  matches exactly.
- PSNR is on RGB scaled to [0, 1] (peak 1). PSNR on ab uses peak 2 * AB_SCALE = 220, the full span of the
  networks' ab range [-110, 110], with the MSE taken over both a and b. Identical images give +inf, as in
  scikit-image.
- SSIM is scikit-image's `structural_similarity` on RGB in [0, 1] (7x7 uniform window, per channel, averaged).
- CIEDE2000 is the per-pixel mean of `skimage.color.deltaE_ciede2000`.
- Colourfulness is Hasler & Susstrunk (2003) on the 0-255 scale of the paper.
- Blotches is `judge.artifacts.blotch_share`: the percentage of pixels inside compact colour islands that the
  ground truth does not have (0 = none).
- ab AuC follows Zhang, Isola & Efros (2016): the fraction of pixels whose ab error (Euclidean) is within a
  threshold, swept over integer thresholds 0..150, integrated with the trapezoid rule and divided by 150, so it
  lies in [0, 1] and identical images give 1.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from judge.artifacts import blotch_share
from models.color import AB_SCALE
from models.metric_table import METRICS, VALIDATION_METRICS

AB_PEAK = 2.0 * AB_SCALE  # span of ab in the networks' space, used as PSNR_ab's peak signal
# What `image_metrics` returns, in the metric table's order (models.metric_table holds names, directions, formats).
METRIC_NAMES = VALIDATION_METRICS
# Which direction is better, for every metric of the table (LPIPS, FID and KID included). None: no direction is
# better (a more colourful output is not a better one by itself; |delta| to the truth's is the comparable number).
HIGHER_IS_BETTER: dict[str, bool | None] = {name: metric.higher_is_better for name, metric in METRICS.items()}


def _check_pair(pred: np.ndarray, target: np.ndarray, what: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{what}: prediction {pred.shape} and target {target.shape} must have the same shape.")
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"{what}: expected (H, W, 3) arrays, got {pred.shape}; pass channel-last images.")


def to_unit_float(rgb: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] RGB -> float64 in [0, 1]."""
    array = np.asarray(rgb)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return array.astype(np.float64, copy=False)


def _psnr_from_mse(mse: float, peak: float) -> float:
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of RGB images (uint8 or float in [0, 1]), peak 1 after scaling; +inf when identical."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target, "psnr")
    return _psnr_from_mse(float(np.mean((to_unit_float(pred) - to_unit_float(target)) ** 2)), 1.0)


def psnr_ab(pred_lab: np.ndarray, target_lab: np.ndarray) -> float:
    """PSNR in dB on the ab channels of Lab images, peak `AB_PEAK` (220); +inf when the ab planes are equal."""
    _check_pair(pred_lab, target_lab, "psnr_ab")
    diff = pred_lab[..., 1:].astype(np.float64) - target_lab[..., 1:].astype(np.float64)
    return _psnr_from_mse(float(np.mean(diff * diff)), AB_PEAK)


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM over RGB channels (scikit-image defaults, data range 1 on [0, 1] images)."""
    pred, target = np.asarray(pred), np.asarray(target)
    _check_pair(pred, target, "ssim")
    return float(structural_similarity(to_unit_float(pred), to_unit_float(target), channel_axis=-1, data_range=1.0))


def ciede2000(pred_lab: np.ndarray, target_lab: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference over pixels (0 for identical images; ~2.3 is a just-noticeable difference)."""
    _check_pair(pred_lab, target_lab, "ciede2000")
    return float(np.mean(deltaE_ciede2000(target_lab, pred_lab, channel_axis=-1)))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Susstrunk (2003) colourfulness on the 0-255 scale (0 for gray; ~33 "moderately", ~59 "quite")."""
    array = to_unit_float(rgb) * 255.0
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"colourfulness: expected an (H, W, 3) RGB image, got {array.shape}.")
    red, green, blue = array[..., 0], array[..., 1], array[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    offset = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * offset)


def ab_auc(pred_lab: np.ndarray, target_lab: np.ndarray, max_threshold: int = 150) -> float:
    """Area under the cumulative ab-error curve (Zhang et al. 2016), normalised to [0, 1]; 1 = every pixel exact."""
    _check_pair(pred_lab, target_lab, "ab_auc")
    if max_threshold < 1:
        raise ValueError(f"ab_auc: max_threshold must be a positive integer, got {max_threshold}.")
    diff = pred_lab[..., 1:].astype(np.float64) - target_lab[..., 1:].astype(np.float64)
    distance = np.sqrt((diff * diff).sum(axis=-1)).ravel()
    # A pixel is counted at threshold t when distance <= t, i.e. from t = ceil(distance) on: one bincount, O(pixels).
    first_threshold = np.minimum(np.ceil(distance), max_threshold + 1).astype(np.int64)
    counts = np.bincount(first_threshold, minlength=max_threshold + 2)[: max_threshold + 1]
    curve = np.cumsum(counts) / distance.size  # fraction within t, for t = 0..max_threshold
    return float(np.trapezoid(curve) / max_threshold)


def image_metrics(pred_rgb: np.ndarray, target_rgb: np.ndarray) -> dict[str, float]:
    """All weight-free metrics of one prediction against its ground truth (same-shape uint8 RGB, Lab computed once).

    Keys are `METRIC_NAMES`; `colourfulness` is the prediction's, `colourfulness_delta` = |CF(pred) - CF(target)|.
    """
    pred_rgb, target_rgb = np.asarray(pred_rgb), np.asarray(target_rgb)
    _check_pair(pred_rgb, target_rgb, "image_metrics")
    pred_unit, target_unit = to_unit_float(pred_rgb), to_unit_float(target_rgb)
    pred_lab, target_lab = rgb2lab(pred_unit), rgb2lab(target_unit)
    pred_cf = colourfulness(pred_unit)
    return {
        "psnr": psnr(pred_unit, target_unit),
        "psnr_ab": psnr_ab(pred_lab, target_lab),
        "ssim": ssim(pred_unit, target_unit),
        "ciede2000": ciede2000(pred_lab, target_lab),
        "colourfulness": pred_cf,
        "colourfulness_delta": abs(pred_cf - colourfulness(target_unit)),
        "ab_auc": ab_auc(pred_lab, target_lab),
        "blotches": blotch_share(pred_lab, target_lab),
    }


def bootstrap_mean_ci(
    values: Iterable[float], *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): mean of `values` and its percentile-bootstrap confidence interval (deterministic per seed).

    +inf values (PSNR of a perfect image) are allowed: the interval then uses order statistics instead of
    interpolation, so it stays defined. NaN is rejected because it always means a broken metric.
    """
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        raise ValueError("bootstrap_mean_ci needs at least one value; evaluate at least one image.")
    if np.isnan(array).any():
        raise ValueError("bootstrap_mean_ci got NaN values; a metric failed on some image, check its inputs.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    mean = float(array.mean())
    if array.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    resampled = array[rng.integers(0, array.size, size=(n_boot, array.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    if np.isfinite(resampled).all():
        low, high = np.quantile(resampled, [tail, 1.0 - tail])
    else:
        low = np.quantile(resampled, tail, method="lower")
        high = np.quantile(resampled, 1.0 - tail, method="higher")
    return mean, float(low), float(high)
