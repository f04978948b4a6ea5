"""LPIPS (Zhang et al. 2018, v0.1, AlexNet trunk) in plain torch, without torchvision.

    metric = load_lpips(alexnet_weights="alexnet-owt-7be5be79.pth")   # raises WeightsUnavailable without real weights
    distances = metric.distance_uint8(pred_batch, target_batch)        # (B,) numpy, 0 = identical

The calibrated linear layers ship with the `lpips` package (`weights/v0.1/alex.pth`, ~6 KB); the package itself
cannot be imported here because it imports torchvision, so its folder is located with `importlib.util.find_spec`.
The AlexNet trunk must be torchvision's ImageNet checkpoint, passed as a local file: LPIPS on any other trunk is
not LPIPS, so this module never builds one for a report (tests build random trunks to check the code path).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from judge.pretrained import ALEXNET, WeightsUnavailable, check_keys, load_pretrained_state, read_state_dict

ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
# Indices in torchvision's `alexnet().features` after which LPIPS taps a ReLU output.
_TAP_INDICES = (1, 4, 7, 9, 11)
# LPIPS v0.1 input scaling (the `ScalingLayer`): shift/scale of [-1, 1] inputs to ImageNet statistics.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class AlexNetTrunk(nn.Module):
    """torchvision's AlexNet `features`, same layer indices so its state dict (`features.N.*`) loads as is."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _TAP_INDICES:
                taps.append(x)
        return taps

    def load_torchvision_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load a torchvision `alexnet` state dict; its `classifier.*` tensors are unused by LPIPS and are dropped."""
        features = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        check_keys(features, self.state_dict(), source)
        self.load_state_dict(features, strict=True)


def _unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """d(x0, x1) = sum over layers of spatial mean of w_l . (unit(f_l(x0)) - unit(f_l(x1)))^2; inputs in [-1, 1]."""

    def __init__(self, trunk: AlexNetTrunk, linear_weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.trunk = trunk.eval()
        self.linears = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in ALEXNET_CHANNELS)
        # The lpips package names them lin{i}.model.1.weight (index 0 of its Sequential is a Dropout).
        renamed = {f"{i}.weight": linear_weights.get(f"lin{i}.model.1.weight") for i in range(len(ALEXNET_CHANNELS))}
        if any(v is None for v in renamed.values()):
            raise ValueError("The LPIPS linear weights must hold lin0..lin4.model.1.weight (lpips v0.1 alex.pth).")
        check_keys(renamed, self.linears.state_dict(), "LPIPS linear layers")
        self.linears.load_state_dict(renamed, strict=True)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @torch.inference_mode()
    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pairs in [-1, 1] -> (B,) distances."""
        if x0.shape != x1.shape or x0.dim() != 4 or x0.shape[1] != 3:
            raise ValueError(f"LPIPS needs two (B, 3, H, W) batches of equal shape, got {x0.shape} and {x1.shape}.")
        both = torch.cat([x0, x1]).sub(self.shift).div(self.scale)  # one trunk pass for both sides
        total = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
        for linear, taps in zip(self.linears, self.trunk(both), strict=True):
            f0, f1 = taps.chunk(2)
            diff = (_unit_normalize(f0) - _unit_normalize(f1)).pow(2)
            total = total + linear(diff).mean(dim=(1, 2, 3))
        return total

    def distance_uint8(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """LPIPS of (B, H, W, 3) or (H, W, 3) uint8 RGB arrays -> (B,) float64."""
        return self(_to_model_input(pred), _to_model_input(target)).double().numpy()


def _to_model_input(images: np.ndarray) -> torch.Tensor:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()
    return tensor / 127.5 - 1.0


def lpips_linear_weights_file() -> Path:
    """The lpips package's calibrated v0.1 AlexNet linear layers (found without importing the package)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable("the lpips package is not installed (pip install --no-deps lpips==0.1.4)")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "alex.pth"
    if not path.is_file():
        raise WeightsUnavailable(f"the lpips package has no calibrated layers at {path}; reinstall lpips==0.1.4")
    return path


def load_lpips(alexnet_weights: str | os.PathLike[str] | None = None, *, download: bool = False) -> LPIPS:
    """Real LPIPS: ImageNet AlexNet trunk + calibrated v0.1 linear layers. Raises WeightsUnavailable otherwise."""
    linear_weights = read_state_dict(lpips_linear_weights_file())
    state = load_pretrained_state(ALEXNET, alexnet_weights, download=download)
    trunk = AlexNetTrunk()
    trunk.load_torchvision_state(state, str(alexnet_weights or ALEXNET.filename))
    return LPIPS(trunk, linear_weights)
