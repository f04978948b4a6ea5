"""`Colorizer`: any PIL image in, full-resolution colour PIL image out (shared by app, CLI and evaluation).

    colorizer = Colorizer(create_model("pix2pix_tiny"))
    color = colorizer.colorize(Image.open("photo.jpg"))                  # at the model's native working size
    color = colorizer.colorize(Image.open("photo.jpg"), working_size=384, flip_average=True)

The network runs at `working_size` (DeOldify's render factor: smaller is steadier, larger is more
detailed); by default ("auto", None) at the model's native working size, the size it was trained for,
recorded in its config. Its ab is upsampled guided by the full-resolution L and recombined with that L, so
the output has the input's size and lightness exactly (chroma is pulled into gamut at constant L). A colour
input is colorized from its own L, so people can compare with the original.

The working image is the whole photo squashed to a square (`keep_aspect=False`, the default) or, with
`keep_aspect`, a rectangle of about the same area; on the validation split the two measured within 0.1
CIEDE2000 of each other (docs/colour-quality.md), and the square batches photos of any shape. `flip_average`
averages the prediction with that of the mirrored photo (test-time augmentation: twice the network time; it
changed nothing measurable for the bundled default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from models.color import AB_SCALE, lab_to_srgb8, lightness_from_rgb, lightness_from_srgb8, normalize_l
from models.imageio import ImageSource, image_to_tensor, open_image
from models.upsample import guided_upsample


@dataclass
class PreparedImage:
    """The full-resolution lightness of one input (what the output keeps), plus its alpha if any."""

    lightness: torch.Tensor  # (1, 1, H, W), CIELAB L in [0, 100]
    alpha: np.ndarray | None

    @property
    def size(self) -> tuple[int, int]:
        return self.lightness.shape[-1], self.lightness.shape[-2]


def prepare_image(source: ImageSource) -> PreparedImage:
    """Decode (any mode, EXIF applied) and compute the full-resolution CIELAB lightness."""
    image = open_image(source)
    if image.mode in ("L", "RGB"):  # the common 8-bit cases: lookup tables, no float RGB copy of the photo
        lightness = lightness_from_srgb8(np.asarray(image))
        return PreparedImage(lightness=lightness.reshape(1, 1, *lightness.shape[-2:]), alpha=None)
    rgb, alpha = image_to_tensor(image)
    return PreparedImage(lightness=lightness_from_rgb(rgb).unsqueeze(0), alpha=alpha)


DEFAULT_WORKING_SIZE = 256  # for networks that do not record a native size (untrained, or saved before it existed)
WorkingSize = int | str | None  # pixels, or None / "auto" for the model's native size


def _round_to_multiple(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


class Colorizer:
    """Wraps a network predicting normalised ab from normalised L; subclasses may override `predict_ab`."""

    def __init__(
        self, model: nn.Module, *, device: str | torch.device = "cpu", name: str | None = None, card: str = ""
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.name = name or type(model).__name__
        self.card = card

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.model, "size_multiple", 1))

    @property
    def native_working_size(self) -> int:
        """The working size the network was trained for, from its saved config (256 when it records none)."""
        return getattr(self.model, "native_working_size", None) or DEFAULT_WORKING_SIZE

    def resolve_working_size(self, working_size: WorkingSize) -> int:
        """Pixels for a requested working size: None or "auto" mean the native size."""
        if working_size is None or (isinstance(working_size, str) and working_size.strip().lower() == "auto"):
            return self.native_working_size
        try:
            return int(working_size)
        except (TypeError, ValueError) as error:
            raise ValueError(f"working_size must be a number of pixels or 'auto', got {working_size!r}.") from error

    def working_side(self, working_size: WorkingSize) -> int:
        size = self.resolve_working_size(working_size)
        if size < 16:
            raise ValueError(f"working_size must be at least 16 pixels, got {size}.")
        return _round_to_multiple(size, self.size_multiple)

    def working_shape(
        self, prepared: PreparedImage, working_size: WorkingSize, *, keep_aspect: bool
    ) -> tuple[int, int]:
        """(height, width) of the network's input: a square, or with `keep_aspect` the photo's aspect at ~ the
        square's area (each side a multiple of the network's size multiple)."""
        side = self.working_side(working_size)
        if not keep_aspect:
            return side, side
        height, width = prepared.lightness.shape[-2:]
        scale = side / (height * width) ** 0.5
        return _round_to_multiple(height * scale, self.size_multiple), _round_to_multiple(
            width * scale, self.size_multiple
        )

    @torch.inference_mode()
    def predict_ab(self, l_norm: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) normalised L -> (B, 2, h, w) normalised ab."""
        return self.model(l_norm.to(self.device)).float().cpu()

    def predict_ab_flip_averaged(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Mean of the prediction and the un-mirrored prediction of the mirrored input (one batch of 2B)."""
        both = self.predict_ab(torch.cat([l_norm, l_norm.flip(-1)]))
        straight, mirrored = both.chunk(2)
        return 0.5 * (straight + mirrored.flip(-1))

    def working_lightness(
        self, prepared: PreparedImage, working_size: WorkingSize = None, *, keep_aspect: bool = False
    ) -> torch.Tensor:
        """The network's input: full-res L area-downsampled (or bilinearly upsampled) to the working shape."""
        shape = self.working_shape(prepared, working_size, keep_aspect=keep_aspect)
        height, width = prepared.lightness.shape[-2:]
        mode = "area" if height >= shape[0] and width >= shape[1] else "bilinear"
        # antialias: a strip (4000x100) is upsampled on one axis but must still be low-passed on the other
        kwargs = {} if mode == "area" else {"align_corners": False, "antialias": True}
        return F.interpolate(prepared.lightness, size=shape, mode=mode, **kwargs)

    def finish(
        self,
        prepared: PreparedImage,
        lightness_small: torch.Tensor,
        ab_norm_small: torch.Tensor,
        *,
        saturation: float = 1.0,
    ) -> Image.Image:
        """Guided-upsample predicted ab to full size, recombine with the original L, return 8-bit sRGB."""
        ab_small = ab_norm_small * (AB_SCALE * saturation)
        ab_full = guided_upsample(lightness_small / 100.0, ab_small, prepared.lightness / 100.0)
        lab = torch.cat([prepared.lightness, ab_full], dim=1)[0]
        array = lab_to_srgb8(lab).numpy()  # chroma pulled into gamut at constant L, so output L == input L
        if prepared.alpha is not None:
            return Image.fromarray(np.dstack([array, prepared.alpha]), mode="RGBA")
        return Image.fromarray(array, mode="RGB")

    def colorize(
        self,
        image: ImageSource,
        *,
        working_size: WorkingSize = None,
        saturation: float = 1.0,
        keep_aspect: bool = False,
        flip_average: bool = False,
    ) -> Image.Image:
        """Colorize one image at full resolution; output size and L equal the input's."""
        return self.colorize_batch(
            [image],
            working_size=working_size,
            saturation=saturation,
            keep_aspect=keep_aspect,
            flip_average=flip_average,
        )[0]

    def colorize_batch(
        self,
        images: Iterable[ImageSource],
        *,
        working_size: WorkingSize = None,
        saturation: float = 1.0,
        batch_size: int = 8,
        keep_aspect: bool = False,
        flip_average: bool = False,
    ) -> list[Image.Image]:
        """Colorize many images, running the network `batch_size` working images at a time."""
        if saturation < 0:
            raise ValueError(f"saturation must be >= 0 (1 = as predicted), got {saturation}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.working_side(working_size)  # a bad size fails before any photo is decoded
        predict = self.predict_ab_flip_averaged if flip_average else self.predict_ab
        results: list[Image.Image] = []
        pending: list[PreparedImage] = []

        def run_group(group: Sequence[PreparedImage]) -> None:
            small = torch.cat([self.working_lightness(p, working_size, keep_aspect=keep_aspect) for p in group])
            ab = predict(normalize_l(small))
            results.extend(
                self.finish(p, small[i : i + 1], ab[i : i + 1], saturation=saturation) for i, p in enumerate(group)
            )

        def flush(group: Sequence[PreparedImage]) -> None:
            if not keep_aspect:
                run_group(group)
                return
            for prepared in group:  # rectangles of different aspects cannot share a batch
                run_group([prepared])

        for image in images:
            pending.append(prepare_image(image))
            if len(pending) == batch_size:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
        return results
