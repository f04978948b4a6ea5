"""The architectures earlier colorization projects compared, behind the same L -> ab interface.

- `SimpleCNN`: a few same-resolution convolutions (the smallest sensible colorizer).
- `DeepCNN`: Zhang et al.-style stacked conv blocks with dilation, for a wide receptive field.
- `ConvAutoencoder`: strided encoder + transposed-conv decoder, no skips (loses detail by design).
- `PlainUNet`: the regression U-Net (double 3x3 convs, max-pool, transposed-conv up, skips).
- `ResidualUNet`: residual conv blocks, 4x4 stride-2 convs with LeakyReLU/BatchNorm down,
  ConvTranspose up.
All end in tanh so predictions live in the normalised ab range.
"""

from __future__ import annotations

import torch
from torch import nn

from models.ab_classes import DEFAULT_TEMPERATURE, AbClassHead
from models.base import ColorizationNet, register_model


def _conv_bn_relu(in_channels: int, out_channels: int, *, dilation: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def _ab_head(in_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, 2, 1), nn.Tanh())


class SimpleCNN(ColorizationNet):
    description = "simple CNN: stacked 3x3 convolutions at full resolution"

    def __init__(self, *, width: int = 64, num_layers: int = 6, hints: bool = False) -> None:
        super().__init__(hints=hints)
        layers = _conv_bn_relu(self.input_channels, width)
        for _ in range(num_layers - 1):
            layers += _conv_bn_relu(width, width)
        self.body = nn.Sequential(*layers)
        self.head = _ab_head(width)

    def forward(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(self.network_input(l_norm, hint_map)))


class DeepCNN(ColorizationNet):
    """Zhang et al. 2016's shape: downsample to 1/8, dilated blocks, upsample; regression head."""

    description = "deep CNN (Zhang et al. 2016 style): strided and dilated conv blocks"

    def __init__(self, *, width: int = 64, blocks_per_stage: int = 2, hints: bool = False) -> None:
        super().__init__(hints=hints)
        widths = [width, width * 2, width * 4, width * 8]
        stages: list[nn.Module] = []
        in_channels = self.input_channels
        for stage_width in widths[:3]:  # three stride-2 stages: 1/8 resolution
            stage = _conv_bn_relu(in_channels, stage_width)
            for _ in range(blocks_per_stage - 1):
                stage += _conv_bn_relu(stage_width, stage_width)
            stage.append(nn.Conv2d(stage_width, stage_width, 3, stride=2, padding=1))
            stages.append(nn.Sequential(*stage))
            in_channels = stage_width
        dilated: list[nn.Module] = []
        for dilation in (2, 2, 4, 4):  # wide context without losing resolution further
            dilated += _conv_bn_relu(in_channels, widths[3], dilation=dilation)
            in_channels = widths[3]
        self.encoder = nn.Sequential(*stages, *dilated)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(widths[3], widths[1], 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(widths[1], widths[0], 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(widths[0], widths[0], 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = _ab_head(widths[0])

    @property
    def size_multiple(self) -> int:
        return 8

    def forward(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(self.network_input(l_norm, hint_map))))


class ConvAutoencoder(ColorizationNet):
    description = "convolutional autoencoder: strided encoder, transposed-conv decoder, no skip connections"

    def __init__(self, *, width: int = 32, depth: int = 4, hints: bool = False) -> None:
        super().__init__(hints=hints)
        self.depth = depth
        encoder: list[nn.Module] = []
        decoder: list[nn.Module] = []
        in_channels = self.input_channels
        widths = [width * 2**level for level in range(depth)]
        for level_width in widths:
            encoder += [
                nn.Conv2d(in_channels, level_width, 4, stride=2, padding=1),
                nn.BatchNorm2d(level_width),
                nn.LeakyReLU(0.2),
            ]
            in_channels = level_width
        for level_width in reversed(widths[:-1]):
            decoder += [
                nn.ConvTranspose2d(in_channels, level_width, 4, stride=2, padding=1),
                nn.BatchNorm2d(level_width),
                nn.ReLU(),
            ]
            in_channels = level_width
        decoder += [nn.ConvTranspose2d(in_channels, width, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.head = _ab_head(width)

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(self.network_input(l_norm, hint_map))))


class _UNetHeadMixin:
    """The U-Nets' output: ab regression (tanh) or, with `ab_classes`, bin logits decoded by annealed mean."""

    def _make_head(
        self,
        channels: int,
        *,
        ab_classes: bool,
        temperature: float,
        prior_correction: float = 0.0,
        class_weights: list[float] | None = None,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (1 = mean, smaller = more vivid), got {temperature}.")
        if not 0 <= prior_correction <= 1:
            raise ValueError(f"prior_correction must be between 0 and 1, got {prior_correction}.")
        self.ab_classes = ab_classes
        # Decoding settings (see models.ab_classes), not learned weights: saved in config.json, chosen on validation.
        self.temperature = temperature
        self.prior_correction = prior_correction
        self.head = AbClassHead(channels) if ab_classes else _ab_head(channels)
        if ab_classes and class_weights is not None:
            self.head.set_class_weights(torch.as_tensor(class_weights, dtype=torch.float32))

    def set_class_weights(self, weights: torch.Tensor) -> None:
        """Record the training's rebalancing weights (in config.json too), so decoding can divide them back out."""
        self.head.set_class_weights(weights)
        self._hub_mixin_config["class_weights"] = [round(float(w), 5) for w in weights]

    def _head_output(self, features: torch.Tensor, l_norm: torch.Tensor, *, return_logits: bool) -> torch.Tensor:
        if not self.ab_classes:
            if return_logits:
                raise ValueError(f"{type(self).__name__} regresses ab; it has no logits (build it with ab_classes).")
            return self.head(features)
        logits = self.head(features)
        if return_logits:
            return logits
        if self.prior_correction:
            logits = self.head.correct_prior(logits, self.prior_correction)
        return AbClassHead.decode(logits, temperature=self.temperature, size=l_norm.shape[-2:])


class GlobalContext(nn.Module):
    """Iizuka et al. (2016)'s global fusion, in its smallest form: the bottleneck's average over the whole image,
    through a two-layer MLP, added back to every position as a per-channel bias.

    A convolutional U-Net sees a neighbourhood, not the scene; most of its colour error on unseen photos is the
    photo's overall cast (sunset, overcast, lawn, sea), which is a property of the whole image. The last layer
    starts at zero, so a trained U-Net grown with this block colorizes exactly as before its first step."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.mlp(features.mean(dim=(2, 3)))[..., None, None]


class _DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(*_conv_bn_relu(in_channels, out_channels), *_conv_bn_relu(out_channels, out_channels))


class PlainUNet(_UNetHeadMixin, ColorizationNet):
    """Ronneberger et al.'s U-Net used as a regressor (no discriminator): the seeds' L1 / MSE baseline."""

    description = "plain U-Net regressor (Ronneberger et al. 2015), trained without a discriminator"

    def __init__(
        self,
        *,
        width: int = 32,
        depth: int = 4,
        ab_classes: bool = False,
        temperature: float = DEFAULT_TEMPERATURE,
        prior_correction: float = 0.0,
        class_weights: list[float] | None = None,
        hints: bool = False,
        global_context: bool = False,
    ) -> None:
        super().__init__(hints=hints)
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = _DoubleConv(self.input_channels, widths[0])
        self.global_context = GlobalContext(widths[-1]) if global_context else None
        self.downs = nn.ModuleList(_DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.merges = nn.ModuleList(_DoubleConv(widths[i] * 2, widths[i]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self._make_head(
            widths[0],
            ab_classes=ab_classes,
            temperature=temperature,
            prior_correction=prior_correction,
            class_weights=class_weights,
        )

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(
        self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None, *, return_logits: bool = False
    ) -> torch.Tensor:
        skips = [self.stem(self.network_input(l_norm, hint_map))]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        x = skips.pop()
        if self.global_context is not None:
            x = self.global_context(x)
        for level in reversed(range(self.depth)):
            x = self.merges[level](torch.cat([skips.pop(), self.ups[level](x)], dim=1))
        return self._head_output(x, l_norm, return_logits=return_logits)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x + self.body(x))


class ResidualUNet(_UNetHeadMixin, ColorizationNet):
    """U-Net whose levels are residual blocks; 4x4 stride-2 convs down, ConvTranspose up."""

    description = "residual U-Net: residual conv blocks, 4x4 stride-2 LeakyReLU/BatchNorm down, ConvTranspose up"

    def __init__(
        self,
        *,
        width: int = 32,
        depth: int = 4,
        ab_classes: bool = False,
        temperature: float = DEFAULT_TEMPERATURE,
        prior_correction: float = 0.0,
        class_weights: list[float] | None = None,
        hints: bool = False,
    ) -> None:
        super().__init__(hints=hints)
        self.depth = depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(self.input_channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2), _ResidualBlock(widths[0])
        )
        self.downs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.LeakyReLU(0.2),
                _ResidualBlock(widths[i + 1]),
            )
            for i in range(depth)
        )
        self.ups = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(widths[i]),
                nn.ReLU(),
            )
            for i in range(depth)
        )
        self.merges = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i] * 2, widths[i], 1), _ResidualBlock(widths[i])) for i in range(depth)
        )
        self._make_head(
            widths[0],
            ab_classes=ab_classes,
            temperature=temperature,
            prior_correction=prior_correction,
            class_weights=class_weights,
        )

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(
        self, l_norm: torch.Tensor, hint_map: torch.Tensor | None = None, *, return_logits: bool = False
    ) -> torch.Tensor:
        skips = [self.stem(self.network_input(l_norm, hint_map))]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for level in reversed(range(self.depth)):
            x = self.merges[level](torch.cat([skips.pop(), self.ups[level](x)], dim=1))
        return self._head_output(x, l_norm, return_logits=return_logits)


# --- registered variants ----------------------------------------------------------------------------
@register_model
def simple_cnn(**overrides) -> SimpleCNN:
    return SimpleCNN(**{"width": 64, "num_layers": 6, **overrides})


@register_model
def simple_cnn_tiny(**overrides) -> SimpleCNN:
    return SimpleCNN(**{"width": 8, "num_layers": 2, **overrides})


@register_model
def deep_cnn(**overrides) -> DeepCNN:
    return DeepCNN(**{"width": 64, "blocks_per_stage": 2, **overrides})


@register_model
def deep_cnn_tiny(**overrides) -> DeepCNN:
    return DeepCNN(**{"width": 4, "blocks_per_stage": 1, **overrides})


@register_model
def autoencoder(**overrides) -> ConvAutoencoder:
    return ConvAutoencoder(**{"width": 32, "depth": 4, **overrides})


@register_model
def autoencoder_tiny(**overrides) -> ConvAutoencoder:
    return ConvAutoencoder(**{"width": 8, "depth": 2, **overrides})


@register_model
def unet(**overrides) -> PlainUNet:
    return PlainUNet(**{"width": 32, "depth": 4, **overrides})


@register_model
def unet_tiny(**overrides) -> PlainUNet:
    return PlainUNet(**{"width": 8, "depth": 2, **overrides})


@register_model
def resunet(**overrides) -> ResidualUNet:
    return ResidualUNet(**{"width": 32, "depth": 4, **overrides})


@register_model
def resunet_tiny(**overrides) -> ResidualUNet:
    return ResidualUNet(**{"width": 8, "depth": 2, **overrides})
