"""sRGB <-> CIELAB (D65, 2° observer) in torch: batched, differentiable, the one home of colour constants.

Every other module goes through these functions, so the app, the trainer and the evaluation agree
on what "L" and "ab" mean. Formulas follow scikit-image (`skimage.color.rgb2lab` / `lab2rgb`), which
the tests use as the reference.

Tensors are channel-first with any leading batch dims: (..., 3, H, W). RGB is in [0, 1].
Network space: L_norm = L / 50 - 1 in [-1, 1]; ab_norm = ab / 110 in about [-1, 1].
"""

from __future__ import annotations

import torch

# sRGB primaries -> CIE XYZ under D65 (the matrix scikit-image uses).
_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_D65_WHITE = (0.95047, 1.0, 1.08883)

_LAB_EPSILON = 0.008856  # (6/29)^3: below it CIELAB's cube root becomes a line
_LAB_KAPPA_SLOPE = 7.787  # slope of that line in f(t)
_LAB_OFFSET = 16.0 / 116.0
_LAB_INVERSE_KNEE = 0.2068966  # 6/29, the same knee seen from the inverse side

L_SCALE = 50.0  # L in [0, 100] -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # ab in about [-110, 110] -> ab / 110 in about [-1, 1]


def _matrix(matrix: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return matrix.to(device=like.device, dtype=like.dtype)


def _apply_matrix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector by `matrix`; image is (..., 3, H, W)."""
    return torch.einsum("ij,...jhw->...ihw", _matrix(matrix, image), image)


def _check_three_channels(image: torch.Tensor, what: str) -> None:
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(
            f"{what} must have shape (..., 3, H, W) with 3 channels, got {tuple(image.shape)}; "
            "pass channel-first tensors (permute HWC arrays with .permute(2, 0, 1))."
        )


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve (values in [0, 1])."""
    # clamp before pow: torch.where evaluates both branches and a negative base would give NaN gradients
    curve = ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > 0.04045, curve, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve (values in [0, 1])."""
    curve = 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(linear > 0.0031308, curve, linear * 12.92)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _LAB_EPSILON, t.clamp_min(_LAB_EPSILON) ** (1 / 3), _LAB_KAPPA_SLOPE * t + _LAB_OFFSET)


def _lab_f_inverse(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _LAB_INVERSE_KNEE, t**3, (t - _LAB_OFFSET) / _LAB_KAPPA_SLOPE)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (..., 3, H, W) -> CIELAB (L in [0, 100], a/b roughly [-110, 110])."""
    _check_three_channels(rgb, "rgb")
    xyz = _apply_matrix(_RGB_TO_XYZ, srgb_to_linear(rgb))
    white = torch.tensor(_D65_WHITE, device=rgb.device, dtype=rgb.dtype).view(3, 1, 1)
    fx, fy, fz = _lab_f(xyz / white).unbind(dim=-3)
    lightness = 116.0 * fy - 16.0
    return torch.stack([lightness, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
    """CIELAB (..., 3, H, W) -> sRGB; out-of-gamut values are clipped to [0, 1] unless `clip=False`."""
    _check_three_channels(lab, "lab")
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)  # as scikit-image: negative z is not a colour
    white = torch.tensor(_D65_WHITE, device=lab.device, dtype=lab.dtype).view(3, 1, 1)
    xyz = _lab_f_inverse(torch.stack([fx, fy, fz], dim=-3)) * white
    rgb = linear_to_srgb(_apply_matrix(_XYZ_TO_RGB, xyz))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def lightness_from_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB L only (..., 1, H, W): cheaper than `rgb_to_lab` when chroma is not needed (full-res paths)."""
    _check_three_channels(rgb, "rgb")
    weights = _RGB_TO_XYZ[1].to(device=rgb.device, dtype=rgb.dtype).view(3, 1, 1)
    luminance = (srgb_to_linear(rgb) * weights).sum(dim=-3, keepdim=True)
    return 116.0 * _lab_f(luminance) - 16.0


def srgb8_lightness_table(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """L of the 256 gray levels (r = g = b): a lookup table for 8-bit grayscale inputs."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    gray = levels.view(1, 1, 256).expand(3, 1, 256)
    return lightness_from_rgb(gray).reshape(256).to(dtype)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    return lightness / L_SCALE - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return (l_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE


def rgb_to_model_space(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB (..., 3, H, W) -> (L_norm (..., 1, H, W), ab_norm (..., 2, H, W)), the networks' space."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


def model_space_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """(L_norm, ab_norm) -> sRGB in [0, 1], clipped."""
    return lab_to_rgb(torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=-3))


def _out_of_gamut(rgb: torch.Tensor, tolerance: float) -> torch.Tensor:
    return ((rgb < -tolerance) | (rgb > 1.0 + tolerance)).any(dim=-3)


def fit_lab_to_gamut(lab: torch.Tensor, *, iterations: int = 8, tolerance: float = 1e-3) -> torch.Tensor:
    """Pull out-of-gamut colours toward gray at constant L, so clipping never changes the lightness.

    Plain RGB clipping of a saturated prediction shifts L (a too-bright red loses luminance); the
    pipeline promises output L == input L, so chroma is scaled down instead. Gray (ab = 0) is always
    in gamut for L in [0, 100], so a per-pixel bisection on the chroma scale converges. Only the
    offending pixels are searched, which keeps full-resolution images cheap.
    """
    _check_three_channels(lab, "lab")
    flat = lab.movedim(-3, -1).reshape(-1, 3)
    rgb = lab_to_rgb(flat.T.reshape(3, -1, 1), clip=False).reshape(3, -1)
    bad = _out_of_gamut(rgb.reshape(3, -1, 1), tolerance).reshape(-1)
    if not bool(bad.any()):
        return lab
    subset = flat[bad]
    low = torch.zeros(subset.shape[0], dtype=lab.dtype, device=lab.device)
    high = torch.ones_like(low)
    for _ in range(iterations):
        mid = (low + high) / 2
        trial = torch.cat([subset[:, :1], subset[:, 1:] * mid[:, None]], dim=1)
        inside = ~_out_of_gamut(lab_to_rgb(trial.T.reshape(3, -1, 1), clip=False), tolerance).reshape(-1)
        low = torch.where(inside, mid, low)
        high = torch.where(inside, high, mid)
    fitted = flat.clone()
    fitted[bad, 1:] = subset[:, 1:] * low[:, None]
    return fitted.reshape(*lab.movedim(-3, -1).shape).movedim(-1, -3)
