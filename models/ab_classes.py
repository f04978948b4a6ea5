"""Colour as classification over quantised ab (Zhang, Isola & Efros 2016), for any U-Net in the registry.

    head = AbClassHead(in_channels=32)               # 23 x 23 bins, 10 ab units apart
    logits = head(features)                          # (B, Q, H/4, W/4)
    ab_norm = head.decode(logits, temperature=0.38)  # annealed mean, upsampled to (B, 2, H, W)

A regressor trained with L1/L2 on ambiguous data predicts the mean (or median) of the plausible colours, which
for most objects is a grayish brown: the "sepia" of the first bundled models. Predicting a distribution over
colour bins and decoding it with the *annealed mean* (a softmax sharpened by a temperature T < 1) keeps the
choice between plausible colours, and class rebalancing (weights ~ 1 / smoothed prior) stops the frequent
desaturated bins from winning every pixel. T = 1 is the plain mean; T -> 0 is the mode. Because T is applied at
decoding time it is a saved, tunable setting of a trained model, chosen on the validation split.

Logits live at a quarter of the working resolution, as in the paper (colour is low-frequency; the pipeline's
guided upsampling restores colour edges from the full-resolution L), and the decoded ab is bilinearly
upsampled. Measured on this 2-core CPU (unet width 16, batch 16, 128 px): at half resolution the 529-way head
and its loss doubled the step time of an L1 regressor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.color import AB_SCALE

AB_BIN_STEP = 10.0  # CIELAB ab units between bin centres, as in Zhang et al.
AB_BIN_LIMIT = 110.0  # centres from -110 to 110: 23 x 23 = 529 bins cover the whole sRGB gamut
DEFAULT_TEMPERATURE = 0.38  # Zhang et al.'s choice; the bundled models record their own, chosen on validation
LOGIT_STRIDE = 4  # logits at 1/4 of the working resolution, as in Zhang et al.


def bin_centres_1d() -> torch.Tensor:
    """Normalised ab (ab / AB_SCALE) of the bin centres along one axis."""
    count = round(2 * AB_BIN_LIMIT / AB_BIN_STEP) + 1
    return torch.linspace(-AB_BIN_LIMIT, AB_BIN_LIMIT, count) / AB_SCALE


def bin_centres() -> torch.Tensor:
    """(Q, 2) normalised (a, b) of every bin, a-major: bin index = ia * n + ib."""
    axis = bin_centres_1d()
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)


def soft_encode(ab_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear soft targets: each pixel's ab spreads over the 4 surrounding bin centres.

    Returns (indices (B, 4, H, W) int64, weights (B, 4, H, W)) so the dense (B, Q, H, W) target is never built.
    Zhang et al. use 5 nearest neighbours with a Gaussian; bilinear weights are the same idea on a grid and
    reproduce the exact ab as their mean.
    """
    n = bin_centres_1d().numel()
    position = (ab_norm.clamp(-1, 1) * AB_SCALE + AB_BIN_LIMIT) / AB_BIN_STEP  # in [0, n - 1]
    low = position.floor().clamp(0, n - 2)
    frac = position - low
    low = low.long()
    ia, ib = low[:, 0], low[:, 1]
    fa, fb = frac[:, 0], frac[:, 1]
    indices = torch.stack([ia * n + ib, ia * n + ib + 1, (ia + 1) * n + ib, (ia + 1) * n + ib + 1], dim=1)
    weights = torch.stack([(1 - fa) * (1 - fb), (1 - fa) * fb, fa * (1 - fb), fa * fb], dim=1)
    return indices, weights


def nearest_bin(ab_norm: torch.Tensor) -> torch.Tensor:
    """(B, H, W) index of the bin nearest to each pixel's ab."""
    n = bin_centres_1d().numel()
    position = ((ab_norm.clamp(-1, 1) * AB_SCALE + AB_BIN_LIMIT) / AB_BIN_STEP).round().long().clamp(0, n - 1)
    return position[:, 0] * n + position[:, 1]


def annealed_mean(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, Q, H, W) logits -> (B, 2, H, W) normalised ab: the mean of softmax(logits / T) over bin centres."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (1 = mean, smaller = more vivid), got {temperature}.")
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    centres = bin_centres().to(probabilities)
    return torch.einsum("bqhw,qc->bchw", probabilities, centres)


class AbClassHead(nn.Module):
    """1x1 convolution from decoder features (average-pooled by LOGIT_STRIDE) to bin logits; annealed-mean decoding."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.num_bins = bin_centres().shape[0]
        self.classifier = nn.Conv2d(in_channels, self.num_bins, 1)
        # The training's rebalancing weights (not saved in the weights file: they live in config.json).
        self.register_buffer("class_weights", torch.ones(self.num_bins), persistent=False)

    def set_class_weights(self, weights: torch.Tensor) -> None:
        if weights.shape != (self.num_bins,) or (
            not weights.is_meta and (not torch.isfinite(weights).all() or (weights < 0).any())
        ):
            raise ValueError(
                f"class_weights must be {self.num_bins} finite, non-negative numbers (one per ab bin); "
                "re-save the model."
            )
        if not self.class_weights.is_meta:  # a network built on the meta device for checking has no storage
            self.class_weights.copy_(weights)

    def correct_prior(self, logits: torch.Tensor, strength: float) -> torch.Tensor:
        """Divide the rebalancing weights back out of the predicted distribution, by `strength` in [0, 1].

        Training with per-class weights w makes the network predict ~ w(c) p(c | L) rather than p(c | L): rare,
        saturated colours are boosted, which is the point (vivid colour), but costs accuracy where the network is
        unsure. Subtracting strength x log w from the logits moves the decoding back towards p(c | L); bins no
        training pixel reached (w = 0) are never chosen.
        """
        weights = self.class_weights.to(logits)
        log_weights = torch.where(weights > 0, torch.log(weights.clamp_min(1e-12)), torch.full_like(weights, 1e4))
        return logits - strength * log_weights.view(1, -1, 1, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.avg_pool2d(features, LOGIT_STRIDE))

    @staticmethod
    def decode(logits: torch.Tensor, *, temperature: float, size: tuple[int, int]) -> torch.Tensor:
        ab = annealed_mean(logits, temperature)
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


def class_prior(ab_norm_batches: list[torch.Tensor]) -> torch.Tensor:
    """Empirical distribution over bins of the ab in `ab_norm_batches` (soft counts, sums to 1)."""
    counts = torch.zeros(bin_centres().shape[0], dtype=torch.float64)
    for ab_norm in ab_norm_batches:
        indices, weights = soft_encode(F.avg_pool2d(ab_norm.float(), LOGIT_STRIDE))
        counts.index_add_(0, indices.flatten(), weights.flatten().double())
    if counts.sum() <= 0:
        raise ValueError("No pixels to estimate the colour prior from; the training split looks empty.")
    return (counts / counts.sum()).float()


def rebalancing_weights(prior: torch.Tensor, *, mix: float = 0.5, sigma_bins: float = 0.5) -> torch.Tensor:
    """Zhang et al.'s w ~ ((1 - mix) * smoothed prior + mix / Q)^-1, normalised so E_prior[w] = 1.

    Q counts the bins the data uses (after smoothing), so bins no photo reaches neither dilute the uniform part
    nor receive weight.
    """
    n = bin_centres_1d().numel()
    grid = prior.view(1, 1, n, n)
    radius = max(1, int(3 * sigma_bins + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma_bins**2))
    kernel = kernel / kernel.sum()
    smoothed = F.conv2d(grid, kernel.view(1, 1, 1, -1), padding=(0, radius))
    smoothed = F.conv2d(smoothed, kernel.view(1, 1, -1, 1), padding=(radius, 0)).flatten()
    smoothed = smoothed / smoothed.sum()
    used = smoothed > 1e-6
    weights = torch.zeros_like(smoothed)
    weights[used] = 1.0 / ((1 - mix) * smoothed[used] + mix / int(used.sum()))
    return weights / (smoothed * weights).sum()


def rebalanced_cross_entropy(
    logits: torch.Tensor, target_ab_norm: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Mean over pixels of w(nearest bin of the target) x cross-entropy against the bilinear soft target.

    `target_ab_norm` is at the network's working size; it is average-pooled to the logits' size first.
    """
    target = F.adaptive_avg_pool2d(target_ab_norm.float(), logits.shape[-2:])
    indices, soft = soft_encode(target)
    log_probabilities = torch.log_softmax(logits.float(), dim=1)
    per_pixel = -(log_probabilities.gather(1, indices) * soft).sum(dim=1)  # (B, H, W)
    pixel_weights = weights.to(logits.device)[nearest_bin(target)]
    return (per_pixel * pixel_weights).mean()
