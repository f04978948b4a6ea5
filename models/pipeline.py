"""`NetworkColorizer`: a ColorLab network (pix2pix, the baselines, colour classes) behind the `Colorizer` contract.

    colorizer = NetworkColorizer(create_model("pix2pix_tiny"))
    color = colorizer.colorize(Image.open("photo.jpg"))                  # at the model's native working size
    color = colorizer.colorize(Image.open("photo.jpg"), working_size=384, flip_average=True)

One forward pass per photo: deterministic, so `colorize_samples` returns one colouring and the network declares no
extra options. The native working size is the one recorded in the network's saved config (256 when it records
none). Working size, shape, flip averaging, batching and the full-resolution recombination are the contract's
(`models.colorizer`): on the validation split the square and the keep-aspect working images measured within 0.1
CIEDE2000 of each other (docs/colour-quality.md), and flip averaging changed nothing measurable for the bundled
default.
"""

from __future__ import annotations

import threading

import torch

from models.base import ColorizationNet
from models.colorizer import (  # re-exported: the pipeline's names as callers know them
    DEFAULT_WORKING_SIZE,
    Colorizer,
    PreparedImage,
    ProgressCallback,
    prepare_image,
)
from models.hint_propagation import propagate_hint_residuals, saved_propagation

__all__ = ["DEFAULT_WORKING_SIZE", "Colorizer", "NetworkColorizer", "PreparedImage", "prepare_image"]


class NetworkColorizer(Colorizer):
    """Wraps a `ColorizationNet` predicting normalised ab from normalised L."""

    def __init__(
        self, model: ColorizationNet, *, device: str | torch.device = "cpu", name: str | None = None, card: str = ""
    ) -> None:
        super().__init__(name=name or type(model).__name__, card=card, device=device)
        self.model = model.to(self.device).eval()
        # A hint model's saved setting: spread the residual at each hint after the forward pass (or None: off).
        self.hint_propagation = saved_propagation(model)

    @property
    def native_working_size(self) -> int:
        """The working size the network was trained for, from its saved config (256 when it records none)."""
        return self.model.native_working_size or DEFAULT_WORKING_SIZE

    @property
    def size_multiple(self) -> int:
        return self.model.size_multiple

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    @property
    def takes_hints(self) -> bool:
        return self.model.takes_hints

    @torch.inference_mode()
    def predict_ab(
        self,
        l_norm: torch.Tensor,
        *,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        hint_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, 1, h, w) normalised L -> (B, 2, h, w) normalised ab: one forward pass (nothing to report or stop).
        A hint model also takes its (B, 3, h, w) hint map (None: no hints), and with its saved `hint_propagation`
        setting the residual at each hint is spread to similar pixels nearby (models.hint_propagation)."""
        if hint_map is None:
            return self.model(l_norm.to(self.device)).float().cpu()
        ab = self.model(l_norm.to(self.device), hint_map.to(self.device)).float().cpu()
        if self.hint_propagation is not None:
            ab = propagate_hint_residuals(l_norm, ab, hint_map, self.hint_propagation)
        return ab
