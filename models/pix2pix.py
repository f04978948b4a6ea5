"""pix2pix for colorization: recursive U-Net generator (L -> ab) and conditional PatchGAN.

Follows Isola et al. 2017 / junyanz's reference code: 4x4 stride-2 convolutions, skip connections at
every scale, dropout in the three innermost decoder blocks, tanh output, and a 70x70 PatchGAN that
sees (L, ab) together. Differences: keyword-only typed constructors, no in-place activations on
tensors that also feed a skip connection, and optional spectral norm for the discriminator. The GAN
losses that train them live with the other losses, in trainer.losses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from models.base import ColorizationNet, register_model

NormName = Literal["batch", "instance"]


def _norm_layer(norm: NormName, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm must be 'batch' or 'instance', got '{norm}'.")


class UNetSkipBlock(nn.Module):
    """One U-Net level: down -> (inner levels) -> up, with the input concatenated to the output."""

    def __init__(
        self,
        *,
        outer_channels: int,
        inner_channels: int,
        input_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        norm: NormName = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        input_channels = outer_channels if input_channels is None else input_channels
        use_bias = norm == "instance"  # batch norm has its own shift
        down_conv = nn.Conv2d(input_channels, inner_channels, 4, stride=2, padding=1, bias=use_bias)
        up_in = inner_channels if innermost else inner_channels * 2
        if outermost:
            down = [down_conv]
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            down = [nn.LeakyReLU(0.2), down_conv]
            up_conv = nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1, bias=use_bias)
            up = [nn.ReLU(), up_conv, _norm_layer(norm, outer_channels)]
        else:
            down = [nn.LeakyReLU(0.2), down_conv, _norm_layer(norm, inner_channels)]
            up_conv = nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1, bias=use_bias)
            up = [nn.ReLU(), up_conv, _norm_layer(norm, outer_channels)]
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        middle = [] if submodule is None else [submodule]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UNetGenerator(ColorizationNet):
    """pix2pix U-Net: `depth` stride-2 downsamplings, width doubling up to 8x `base_width`."""

    description = "pix2pix U-Net generator (Isola et al. 2017), trained with a conditional PatchGAN"

    def __init__(
        self,
        *,
        depth: int = 8,
        base_width: int = 64,
        norm: NormName = "batch",
        dropout: float = 0.5,
        in_channels: int = 1,
        out_channels: int = 2,
        hints: bool = False,
    ) -> None:
        super().__init__(hints=hints)
        if depth < 2:
            raise ValueError(f"depth must be >= 2 (one outer and one inner level), got {depth}.")
        _norm_layer(norm, 1)  # validates the name early
        self.depth = depth
        widths = [min(base_width * 2**level, base_width * 8) for level in range(depth)]
        # Build from the innermost level outwards, as in the reference implementation.
        block = UNetSkipBlock(outer_channels=widths[-2], inner_channels=widths[-1], norm=norm)
        for level in range(depth - 2, 0, -1):
            # the three innermost decoder blocks that stay at 8x width get dropout, as in the paper
            use_dropout = dropout if level >= depth - 4 and widths[level] == widths[-1] else 0.0
            block = UNetSkipBlock(
                outer_channels=widths[level - 1],
                inner_channels=widths[level],
                submodule=block,
                norm=norm,
                dropout=use_dropout,
            )
        self.model = UNetSkipBlock(
            outer_channels=out_channels,
            inner_channels=widths[0],
            input_channels=in_channels + self.input_channels - 1,  # + the hint map's channels
            submodule=block,
            outermost=True,
            norm=norm,
        )

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(self.network_input(l_norm, hint_map))


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: classifies overlapping patches of (L, ab) as real or fake.

    With `n_layers=3` each output logit sees a 70x70 input patch. The discriminator is not a
    colorizer, so it is a plain module; the trainer checkpoints it with the optimizer state.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        base_width: int = 64,
        n_layers: int = 3,
        norm: NormName = "batch",
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        wrap = spectral_norm if use_spectral_norm else (lambda layer: layer)
        use_bias = norm == "instance"
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, base_width, 4, 2, 1)), nn.LeakyReLU(0.2)]
        width = base_width
        for index in range(1, n_layers + 1):
            stride = 2 if index < n_layers else 1
            next_width = base_width * min(2**index, 8)
            layers += [
                wrap(nn.Conv2d(width, next_width, 4, stride, 1, bias=use_bias)),
                _norm_layer(norm, next_width),
                nn.LeakyReLU(0.2),
            ]
            width = next_width
        layers.append(wrap(nn.Conv2d(width, 1, 4, 1, 1)))
        self.model = nn.Sequential(*layers)

    def forward(self, l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
        if l_norm.shape[-2:] != ab_norm.shape[-2:]:
            raise ValueError(
                f"L {tuple(l_norm.shape)} and ab {tuple(ab_norm.shape)} must have the same height and width."
            )
        return self.model(torch.cat([l_norm, ab_norm], dim=1))


# --- registered variants ----------------------------------------------------------------------------
@register_model
def pix2pix_unet256(**overrides) -> UNetGenerator:
    """The paper's generator: 8 downsamplings (256 -> 1), width 64, batch norm, dropout 0.5 (54 M params)."""
    return UNetGenerator(**{"depth": 8, "base_width": 64, "norm": "batch", "dropout": 0.5, **overrides})


@register_model
def pix2pix_unet256_w32(**overrides) -> UNetGenerator:
    """Half-width generator (13.6 M params, ~4x fewer FLOPs): the first build's pix2pix width, for CPU serving."""
    return UNetGenerator(**{"depth": 8, "base_width": 32, "norm": "batch", "dropout": 0.5, **overrides})


@register_model
def pix2pix_tiny(**overrides) -> UNetGenerator:
    """Test-sized generator: 4 downsamplings, width 8."""
    return UNetGenerator(**{"depth": 4, "base_width": 8, "norm": "batch", "dropout": 0.5, **overrides})
