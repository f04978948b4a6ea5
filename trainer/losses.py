"""Every training loss: reconstruction (L1, Huber, MSE, SSIM, CIEDE2000, colourfulness, VGG perceptual, colour
classes, combined by weights) and GAN.

    criterion = ReconstructionLoss.from_spec("l1:1,ssim:0.5", perceptual_weights=None)
    loss, parts = criterion(l_norm, pred_ab, target_ab)

L1 / MSE / SSIM act on normalised ab (what the network predicts). The perceptual loss compares
VGG16 features of the RGB images rebuilt from (L, ab), so it needs ImageNet VGG16 weights from a
local file: there are none offline, and random VGG features would be a different loss wearing
the same name, so without a file it refuses to start.

    gan_loss = GANLoss("vanilla", real_label=0.9)   # pix2pix's adversarial objective (a PatchGAN's logits)
    d_loss = gan_loss(real_logits, target_is_real=True) + gan_loss(fake_logits, target_is_real=False)
    g_adv = gan_loss(fake_logits, target_is_real=True, for_discriminator=False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.ab_classes import class_prior, rebalanced_cross_entropy, rebalancing_weights
from models.base import check_tensor_shapes
from models.color import AB_SCALE, L_SCALE, model_space_to_rgb
from models.color_difference import ciede2000

GanMode = Literal["vanilla", "lsgan", "hinge"]
LOSS_NAMES = ("l1", "huber", "mse", "ssim", "perceptual", "classes", "ciede2000", "colourfulness")
HUBER_DELTA = 0.1  # in normalised ab (x110 = 11 ab units): L2 near the truth, L1 for the ambiguous large errors


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    return kernel[:, None] * kernel[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 2.0, window_size: int = 11) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, Gaussian window) per channel, differentiable; inputs (B, C, H, W)."""
    return ssim_map(x, y, data_range=data_range, window_size=window_size).mean()


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 2.0, window_size: int = 11) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W); borders are reflect-padded so that every pixel takes part in the loss.

    Away from the borders it equals scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)` (tested), which leaves the borders out instead.
    """
    channels = x.shape[1]
    window = _gaussian_window(window_size).to(x).expand(channels, 1, window_size, window_size)
    pad = window_size // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, [pad] * 4, mode="reflect"), window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sigma_x = blur(x * x) - mu_x**2
    sigma_y = blur(y * y) - mu_y**2
    sigma_xy = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))


def ciede2000_loss(l_norm: torch.Tensor, pred_ab: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 (in its own units, ~2.3 = just noticeable) between (L, predicted ab) and (L, true ab).

    The metric evaluation ranks colorizers by. Unlike L1 on ab, it forgives a chroma error more where the colour
    is saturated (S_C = 1 + 0.045 C) and weighs hue and chroma apart; computed in fp32 whatever the autocast."""
    lightness = (l_norm.float() + 1.0) * L_SCALE
    pred = torch.cat([lightness, pred_ab.float() * AB_SCALE], dim=1)
    target = torch.cat([lightness, target_ab.float() * AB_SCALE], dim=1)
    return ciede2000(pred, target).mean()


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image Hasler & Suesstrunk (2003) colourfulness of (N, 3, H, W) sRGB in [0, 1], on the 0-255 scale: the
    formula judge.metrics reports (|delta colourfulness|), differentiable (an epsilon under each square root)."""
    red, green, blue = (rgb * 255.0).unbind(1)
    rg, yb = red - green, 0.5 * (red + green) - blue
    spread = torch.sqrt(rg.var(dim=(1, 2), unbiased=False) + yb.var(dim=(1, 2), unbiased=False) + 1e-6)
    offset = torch.sqrt(rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2 + 1e-6)
    return spread + 0.3 * offset


def colourfulness_loss(l_norm: torch.Tensor, pred_ab: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Mean |colourfulness(prediction) - colourfulness(truth)| over the batch's images.

    A per-pixel loss under uncertainty (L1's median, CIEDE2000) pays for a wrong guess and not for a missing one,
    so it paints sepia. This whole-image term asks for as much colour as the photo has and leaves the network to
    put it where it is surest; weighted against a per-pixel loss it trades accuracy for colour."""
    pred = colourfulness(model_space_to_rgb(l_norm.float(), pred_ab.float()))
    with torch.no_grad():
        target = colourfulness(model_space_to_rgb(l_norm.float(), target_ab.float()))
    return (pred - target).abs().mean()


def parse_loss_spec(spec: str) -> dict[str, float]:
    """'l1' or 'l1:1,ssim:0.5' -> {name: weight}; an unknown name or a missing number is refused in one sentence.

    trainer.args calls it too, so a misspelt --losses fails before any model is built.
    """
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition(":")
        try:
            weights[name.strip().lower()] = float(value) if value else 1.0
        except ValueError as error:
            raise ValueError(f"--losses item '{part}' needs a number after ':' (e.g. ssim:0.5).") from error
    if not weights:
        raise ValueError("--losses is empty; use e.g. 'l1' or 'l1:1,ssim:0.5'.")
    _check_loss_names(weights)
    return weights


def _check_loss_names(weights: dict[str, float]) -> None:
    unknown = set(weights) - set(LOSS_NAMES)
    if unknown:
        raise ValueError(f"Unknown loss {sorted(unknown)}; choose from {', '.join(LOSS_NAMES)}.")


class VGG16Features(nn.Module):
    """VGG16 conv trunk (torchvision layout, so its state-dict keys load) up to relu4_3; frozen."""

    _CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
    _TAPS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in self._CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> VGG16Features:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"--perceptual_weights {path} does not exist; pass a torchvision VGG16 state dict file.")
        fix = "pass torchvision's vgg16 weights (vgg16-397923af.pth)"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # not a torch file, truncated, or a pickle weights_only refuses
            raise ValueError(f"{path} could not be read as a state dict ({type(error).__name__}); {fix}.") from None
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a VGG16 state dict; {fix}.")
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        model = cls()
        wanted = model.features.state_dict()
        # torchvision's file also has the deeper layers and the classifier, which the perceptual taps never use
        check_tensor_shapes(
            {k: tuple(v.shape) for k, v in features.items() if k in wanted},
            {k: tuple(v.shape) for k, v in wanted.items()},
            where=str(path),
            network="VGG16's convolutional features",
            fix=f"it is not a VGG16 state dict; {fix}",
        )
        model.features.load_state_dict({k: features[k] for k in wanted})
        return model.eval()

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._TAPS:
                taps.append(x)
            if index >= self._TAPS[-1]:
                break
        return taps


class ReconstructionLoss(nn.Module):
    """Weighted sum of named losses; returns (total, {name: value}) for logging."""

    def __init__(self, weights: dict[str, float], *, vgg: VGG16Features | None = None) -> None:
        super().__init__()
        _check_loss_names(weights)
        if "perceptual" in weights and vgg is None:
            raise ValueError(
                "The perceptual loss needs ImageNet VGG16 weights: pass --perceptual_weights vgg16.pth (a torchvision "
                "state dict); none can be downloaded here, and random features would not be a perceptual loss."
            )
        self.weights = weights
        self.vgg = vgg
        self.class_weights: torch.Tensor | None = None  # set by fit_class_weights when "classes" is used

    @classmethod
    def from_spec(cls, spec: str, *, perceptual_weights: str | None = None) -> ReconstructionLoss:
        """'l1' or 'l1:1,ssim:0.5,perceptual:0.1' -> weights; perceptual weights file only if used."""
        weights = parse_loss_spec(spec)
        vgg = VGG16Features.from_file(perceptual_weights) if "perceptual" in weights and perceptual_weights else None
        return cls(weights, vgg=vgg)

    @property
    def needs_logits(self) -> bool:
        return "classes" in self.weights

    def fit_class_weights(self, ab_norm_batches: list[torch.Tensor], *, mix: float = 0.5) -> None:
        """Zhang et al.'s class rebalancing from the training split's colour prior (deterministic for a dataset)."""
        self.class_weights = rebalancing_weights(class_prior(ab_norm_batches), mix=mix)

    def forward(
        self,
        l_norm: torch.Tensor,
        pred_ab: torch.Tensor,
        target_ab: torch.Tensor,
        *,
        logits: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts: dict[str, torch.Tensor] = {}
        if "classes" in self.weights:
            if logits is None or self.class_weights is None:
                raise ValueError(
                    "The 'classes' loss needs a colorizer built with ab_classes (it predicts colour-bin logits) and "
                    "class weights from the training data; use e.g. --model unet --model_overrides "
                    "'{\"ab_classes\": true}'."
                )
            parts["classes"] = rebalanced_cross_entropy(logits, target_ab, self.class_weights)
        if "l1" in self.weights:
            parts["l1"] = F.l1_loss(pred_ab, target_ab)
        if "huber" in self.weights:
            parts["huber"] = F.huber_loss(pred_ab, target_ab, delta=HUBER_DELTA)
        if "mse" in self.weights:
            parts["mse"] = F.mse_loss(pred_ab, target_ab)
        if "ssim" in self.weights:
            parts["ssim"] = 1.0 - ssim(pred_ab, target_ab)
        if "ciede2000" in self.weights:
            parts["ciede2000"] = ciede2000_loss(l_norm, pred_ab, target_ab)
        if "colourfulness" in self.weights:
            parts["colourfulness"] = colourfulness_loss(l_norm, pred_ab, target_ab)
        if "perceptual" in self.weights and self.vgg is not None:
            pred_rgb = model_space_to_rgb(l_norm, pred_ab)
            with torch.no_grad():
                target_features = self.vgg(model_space_to_rgb(l_norm, target_ab))
            parts["perceptual"] = sum(
                (F.l1_loss(p, t) for p, t in zip(self.vgg(pred_rgb), target_features, strict=True)),
                start=torch.zeros((), device=pred_ab.device),
            )
        total = sum((self.weights[name] * value for name, value in parts.items()), start=torch.zeros(()).to(pred_ab))
        return total, parts


class GANLoss(nn.Module):
    """Adversarial objective: 'vanilla' (BCE on logits), 'lsgan' (least squares) or 'hinge'.

    `real_label` below 1 gives one-sided label smoothing, which keeps a strong discriminator from
    saturating (the failure mode docs/architecture.md describes on this data).
    """

    def __init__(self, mode: GanMode = "vanilla", *, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge"):
            raise ValueError(f"gan mode must be 'vanilla', 'lsgan' or 'hinge', got '{mode}'.")
        self.mode = mode
        self.real_label = real_label
        self.fake_label = fake_label

    def forward(self, logits: torch.Tensor, *, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if self.mode == "hinge":
            if not for_discriminator:
                return -logits.mean()  # generator: raise the critic's score
            margin = 1.0 - logits if target_is_real else 1.0 + logits
            return torch.relu(margin).mean()
        target = torch.full_like(logits, self.real_label if target_is_real else self.fake_label)
        if self.mode == "lsgan":
            return nn.functional.mse_loss(logits, target)
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
