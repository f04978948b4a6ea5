"""The Lab -> 8-bit sRGB output path as it was before the two-core version (commit 82641ac), kept verbatim as the
reference that `models.color.lab_to_srgb8` must match within one 8-bit level (tests/test_color.py) and as the
"before" of benchmarks/bench_srgb8.py.
"""

from __future__ import annotations

import numpy as np
import torch

from models.color import (
    _band_rows,
    _check_three_channels,
    _fit_columns,
    _inside_gamut,
    _lab_to_linear_rgb,
    linear_to_srgb,
)

# 8-bit sRGB code of a linear value v, indexed by round(sqrt(v) * 65535): the square-root spacing is
# fine where the transfer curve is steep (near black), so the table is exact to 0.006 of a level.
_TABLE = (
    linear_to_srgb((torch.arange(65536, dtype=torch.float64) / 65535.0) ** 2)
    .mul(255.0)
    .add(0.5)
    .floor()
    .to(torch.uint8)
).numpy()


def reference_lab_to_srgb8(lab: torch.Tensor, *, fit_gamut: bool = True, tolerance: float = 1e-3) -> torch.Tensor:
    """CIELAB (3, H, W) -> 8-bit sRGB (H, W, 3) uint8: row bands, per-band gamut fit, numpy table lookup."""
    _check_three_channels(lab, "lab")
    height, width = lab.shape[-2:]
    output = torch.empty(height, width, 3, dtype=torch.uint8)
    rows = _band_rows(width)
    for top in range(0, height, rows):
        band = lab[:, top : top + rows].float()
        linear = _lab_to_linear_rgb(band)
        if fit_gamut:
            bad = ~_inside_gamut(linear, tolerance).reshape(-1)
            if bool(bad.any()):
                fitted = _fit_columns(band.reshape(3, -1)[:, bad], iterations=8, tolerance=tolerance)
                linear.view(3, -1)[:, bad] = _lab_to_linear_rgb(fitted.unsqueeze(-1)).squeeze(-1)
        index = linear.clamp_(0.0, 1.0).sqrt_().mul_(65535.0).add_(0.5).to(torch.int32)
        codes = np.take(_TABLE, index.numpy())  # (3, rows, W)
        output[top : top + rows] = torch.from_numpy(codes).permute(1, 2, 0)
    return output
