"""FID and KID between two image sets, on pool3 features of the standard FID Inception-v3.

    net = load_fid_inception("pt_inception-2015-12-05-6726825d.pth")   # WeightsUnavailable without real weights
    real, fake = inception_features(net, real_uint8), inception_features(net, fake_uint8)
    print(frechet_distance(real, fake), kernel_inception_distance(real, fake))

FID (Heusel et al. 2017) compares Gaussian fits of the feature sets; it is strongly biased at small sample
sizes, so compare FIDs only between rows computed on the same images (the evaluation does). KID (Binkowski
et al. 2018) is the unbiased squared MMD with the cubic polynomial kernel, averaged over random subsets.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from scipy import linalg

from judge.inception import FIDInceptionV3
from judge.pretrained import FID_INCEPTION, load_pretrained_state


def load_fid_inception(weights: str | os.PathLike[str] | None = None, *, download: bool = False) -> FIDInceptionV3:
    """The FID Inception with the standard weights; raises WeightsUnavailable when there are none."""
    state = load_pretrained_state(FID_INCEPTION, weights, download=download)
    net = FIDInceptionV3()
    net.load_fid_state(state, str(weights or FID_INCEPTION.filename))
    return net.eval()


def inception_features(net: FIDInceptionV3, images: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 2048) float64 pool3 features."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"inception_features expects (N, H, W, 3) uint8 RGB images, got {array.shape} {array.dtype}.")
    chunks = []
    for start in range(0, len(array), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(array[start : start + batch_size])).permute(0, 3, 1, 2)
        chunks.append(net(batch.float() / 255.0).double().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, net.fc.in_features))


def _check_features(a: np.ndarray, b: np.ndarray, minimum: int, what: str) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: feature sets must be (N, D) with the same D, got {a.shape} and {b.shape}.")
    if min(len(a), len(b)) < minimum:
        raise ValueError(
            f"{what} needs at least {minimum} images per set, got {len(a)} and {len(b)}; use more images."
        )


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, *, eps: float = 1e-6) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets."""
    _check_features(features_a, features_b, 2, "FID")
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        # Fewer images than feature dimensions makes the product singular; nudge both covariances (as pytorch-fid).
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    covmean = np.real(covmean)  # sqrtm returns tiny imaginary parts from round-off
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))


def _polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(u, v) = (u.v / d + 1)^3."""
    dim = x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(
    features_a: np.ndarray, features_b: np.ndarray, *, subset_size: int = 1000, n_subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD^2 over random subsets (deterministic per seed)."""
    _check_features(features_a, features_b, 2, "KID")
    size = min(subset_size, len(features_a), len(features_b))
    rng = np.random.default_rng(seed)
    values = [
        _polynomial_mmd(
            features_a[rng.choice(len(features_a), size, replace=False)],
            features_b[rng.choice(len(features_b), size, replace=False)],
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
