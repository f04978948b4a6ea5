"""The `Colorizer` contract: all that the app, the CLI and evaluation ask of a colorizer, GAN or diffusion.

    photo = prepare_image("photo.jpg")                   # decoded, full-resolution L computed: once per request
    colourings = colorizer.colorize_samples(photo)       # the primary method: a list (deterministic models: one)
    color = colorizer.colorize(photo, working_size=384)  # one colouring
    colors = colorizer.colorize_batch(paths)             # one colouring per photo, the network run in batches
    colorizer.native_working_size                        # the size it was trained at (what "auto" means)
    colorizer.extra_options                              # per-call options with this model's defaults
    colorizer.colorize(photo, hints=[Hint(x, y, rgb=(200, 30, 40))])  # a hint model follows colour points
    colorizer.colorize(photo, size_average=128)          # averaged with the prediction at a second working size

A colorizer implements one model step, `predict_ab` (normalised L (B, 1, h, w) in, normalised ab out), and says
what it is: `native_working_size`, `extra_options` (options beyond working size and saturation, e.g. a
sampler's {"num_samples": 1, "seed": 0, ...}; a network has none), `size_multiple`, `architecture` and
`num_parameters()`. A colorizer that declares `num_samples` draws that many colourings per photo and returns
them image-major from `predict_ab` ((B * num_samples, 2, h, w)); the others return one. Everything else is
shared here, so every colorizer behaves the same way: options resolved against the declared defaults in one
place (`resolve_options`), the working size and shape, flip and size averaging, batching, cancelling, and
`finish`.

The network runs at the working size (DeOldify's render factor: smaller is steadier, larger is more detailed),
by default the model's native one. The working image is the whole photo squashed to a square or, with
`keep_aspect`, a rectangle of about the same area. The predicted ab is upsampled guided by the full-resolution
L and recombined with that L, so the output has the input's size and lightness exactly (chroma is pulled into
gamut at constant L); a colour input is colorized from its own L. `flip_average` averages each colouring with
the mirrored photo's (twice the model time). `size_average` (pixels) averages it in ab with the prediction at that
second working size, resized to the first working shape (a second pass; hints are re-encoded at that size). Both
are off by default: on the validation split neither is worth its extra pass for the bundled default (size
averaging: CIEDE2000 12.12 alone, 12.11 with 128, 12.17 with 256; docs/colour-quality.md). Size averaging is for
deterministic colorizers: a sampler's two draws are different colourings, not two estimates of one.

Colour hints (`models.hints`) are points in the photo's own pixels; a colorizer that `takes_hints` gets them as a
hint map at the working size (`predict_ab(..., hint_map=...)`). A colorizer that does not take hints refuses them
with a sentence: hints are never silently ignored.

`models.pipeline.NetworkColorizer` (pix2pix, the baselines, colour classes) and `models.diffusion.DiffusionColorizer`
implement it; `judge.evaluate.GrayscaleBaseline` is the smallest example.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.color import AB_SCALE, lab_to_srgb8, lightness_from_rgb, lightness_from_srgb8, normalize_l
from models.hint_map import encode_hints
from models.hints import Hint, HintError
from models.imageio import ImageSource, image_to_tensor, open_image
from models.options import WorkingSize, check_saturation, parse_size_average, parse_working_size
from models.upsample import guided_upsample

DEFAULT_WORKING_SIZE = 256  # for networks that record no native size (untrained, or saved before it existed)
NUM_SAMPLES = "num_samples"  # the extra option that makes a colorizer draw several colourings per photo
ProgressCallback = Callable[[int, int], None]


class SamplingCancelled(RuntimeError):
    """Raised when the caller's cancel event is set; nothing is returned for that request."""


@dataclass(frozen=True)
class PreparedImage:
    """One decoded photo: its full-resolution CIELAB lightness (what every output keeps) and its alpha, if any.

    Made once per request and passed to every colorizer, so a photo is decoded and converted only once."""

    lightness: torch.Tensor  # (1, 1, H, W), CIELAB L in [0, 100]
    alpha: np.ndarray | None

    @property
    def size(self) -> tuple[int, int]:
        return self.lightness.shape[-1], self.lightness.shape[-2]


def prepare_image(source: ImageSource | PreparedImage) -> PreparedImage:
    """Decode (any mode, EXIF applied) and compute the full-resolution L; a PreparedImage is returned as is."""
    if isinstance(source, PreparedImage):
        return source
    image = open_image(source)
    if image.mode in ("L", "RGB"):  # the common 8-bit cases: lookup tables, no float RGB copy of the photo
        lightness = lightness_from_srgb8(np.asarray(image))
        return PreparedImage(lightness=lightness.reshape(1, 1, *lightness.shape[-2:]), alpha=None)
    rgb, alpha = image_to_tensor(image)
    return PreparedImage(lightness=lightness_from_rgb(rgb).unsqueeze(0), alpha=alpha)


def _round_to_multiple(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def resize_ab(ab_norm: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Normalised ab (B, 2, h, w) resized to `shape` (height, width): bilinear, low-passed when shrinking."""
    if tuple(ab_norm.shape[-2:]) == tuple(shape):
        return ab_norm
    return F.interpolate(ab_norm, size=shape, mode="bilinear", align_corners=False, antialias=True)


def _check_not_cancelled(cancel_event: threading.Event | None) -> None:
    if cancel_event is not None and cancel_event.is_set():
        raise SamplingCancelled("Sampling was cancelled before it started.")


class Colorizer(ABC):
    """Any photo in, full-resolution colourings out; subclasses implement `predict_ab` and `native_working_size`."""

    def __init__(self, *, name: str, card: str = "", device: str | torch.device = "cpu") -> None:
        self.name = name
        self.card = card  # the model card's markdown ("" when the model has none)
        self.device = torch.device(device)

    # --- what a colorizer says about itself -------------------------------------------------------------------
    @property
    @abstractmethod
    def native_working_size(self) -> int:
        """The working size this colorizer was trained at: what a request for "auto" (None) runs at."""

    @property
    def size_multiple(self) -> int:
        """The working image's height and width are rounded to multiples of this."""
        return 1

    @property
    def extra_options(self) -> dict[str, Any]:
        """Per-call options beyond working size and saturation, with this colorizer's defaults ({}: none)."""
        return {}

    @property
    def takes_hints(self) -> bool:
        """Whether this colorizer follows colour hints (`colorize(..., hints=[...])`)."""
        return False

    def check_hints(self, hints: Sequence[Hint] | None) -> list[Hint]:
        """The hints as a list ([] for None); refused with a sentence by a colorizer that does not take them."""
        hints = list(hints or [])
        if hints and not self.takes_hints:
            raise HintError(
                f"{self.name} does not take colour hints; remove the hints or choose a hint model "
                "(e.g. the bundled colour_hints)."
            )
        if not all(isinstance(hint, Hint) for hint in hints):
            raise HintError("Hints must be models.hints.Hint objects (x, y, rgb or lab, radius).")
        return hints

    @property
    def draws_samples(self) -> bool:
        """Whether this colorizer draws several plausible colourings per photo (it declares `num_samples`)."""
        return NUM_SAMPLES in self.extra_options

    @property
    def supports_size_average(self) -> bool:
        """Whether averaging two working sizes can help this colorizer: a deterministic model gives two estimates of
        one colouring; a sampler's two draws are two colourings, and a model that ignores its input gains nothing."""
        return not self.draws_samples

    @property
    def architecture(self) -> str:
        return type(self).__name__

    def num_parameters(self) -> int | None:
        """Trainable size in parameters (None when the colorizer has no network)."""
        return None

    # --- the model step ---------------------------------------------------------------------------------------
    @abstractmethod
    def predict_ab(
        self,
        l_norm: torch.Tensor,
        *,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """(B, 1, h, w) normalised L -> (B * num_samples, 2, h, w) normalised ab, image-major, on the CPU.

        `options` are this colorizer's `extra_options` (resolved by `resolve_options`); samplers report
        `progress_callback(step, total)` and stop with SamplingCancelled when `cancel_event` is set.
        """

    def resolve_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every declared option: the given value, else this colorizer's default (None also means the default).

        The one place defaults are filled in; an option the colorizer does not declare is refused."""
        declared = self.extra_options
        given = dict(options or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "none"
            raise ValueError(f"{self.name} does not take the option(s) {', '.join(unknown)}; it takes: {takes}.")
        resolved = {**declared, **{key: value for key, value in given.items() if value is not None}}
        count = resolved.get(NUM_SAMPLES, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{NUM_SAMPLES} must be a whole number of at least 1, got {count!r}.")
        return resolved

    def predict_ab_flip_averaged(self, l_norm: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Mean of each prediction and the un-mirrored prediction of the mirrored input (one batch of 2B); a hint
        map is mirrored with its photo."""
        hint_map = kwargs.pop("hint_map", None)
        if hint_map is not None:
            kwargs["hint_map"] = torch.cat([hint_map, hint_map.flip(-1)])
        both = self.predict_ab(torch.cat([l_norm, l_norm.flip(-1)]), **kwargs)
        straight, mirrored = both.chunk(2)
        return 0.5 * (straight + mirrored.flip(-1))

    def check_size_average(self, size_average: int | str | None, working_size: WorkingSize = None) -> int | None:
        """The second working size of size averaging in pixels (None: off), refused with a sentence when it is not
        a size, when this colorizer draws samples, or when it rounds to the first working size's side."""
        second = parse_size_average(size_average)
        if second is None:
            return None
        if self.draws_samples:
            raise ValueError(
                f"{self.name} draws samples, and two draws at different sizes are different colourings, not two "
                "estimates of one; leave size_average off for it (num_samples gives several colourings)."
            )
        first = self.working_side(working_size)
        if self.working_side(second) == first:
            raise ValueError(
                f"size_average {second} gives the same {first} px working side as the working size, so the average "
                f"would only repeat the prediction; pass a different size (e.g. {first // 2} or {first * 2})."
            )
        return second

    def predict_working_ab(
        self,
        photos: Sequence[PreparedImage],
        small: torch.Tensor,
        *,
        flip_average: bool = False,
        size_average: int | None = None,
        keep_aspect: bool = False,
        hints: Sequence[Hint] = (),
        **kwargs: Any,
    ) -> torch.Tensor:
        """Normalised ab at the working shape of `small` (the `photos`' working L, (B, 1, h, w)), image-major.

        One prediction (mirror-averaged with `flip_average`); with `size_average` (pixels, checked by
        `check_size_average`) the mean of it and the prediction at that second working size resized to (h, w).
        `hints` (one photo) are encoded as a hint map at each pass's own shape. `kwargs`: the resolved options and
        the progress/cancel hooks of `predict_ab`."""
        predict = self.predict_ab_flip_averaged if flip_average else self.predict_ab

        def one_pass(lightness: torch.Tensor) -> torch.Tensor:
            inputs = dict(kwargs)
            if hints:
                inputs["hint_map"] = encode_hints(hints, photos[0].lightness, tuple(lightness.shape[-2:]))
            return predict(normalize_l(lightness), **inputs)

        ab = one_pass(small)
        if size_average is None:
            return ab
        _check_not_cancelled(kwargs.get("cancel_event"))
        second = torch.cat([self.working_lightness(p, size_average, keep_aspect=keep_aspect) for p in photos])
        return 0.5 * (ab + resize_ab(one_pass(second), tuple(small.shape[-2:])))

    # --- working size ------------------------------------------------------------------------------------------
    def resolve_working_size(self, working_size: WorkingSize) -> int:
        """Pixels for a requested working size: None or "auto" mean the native size."""
        size = parse_working_size(working_size)
        return self.native_working_size if size is None else size

    def working_side(self, working_size: WorkingSize) -> int:
        return _round_to_multiple(self.resolve_working_size(working_size), self.size_multiple)

    def working_shape(
        self, prepared: PreparedImage, working_size: WorkingSize, *, keep_aspect: bool
    ) -> tuple[int, int]:
        """(height, width) of the model's input: a square, or with `keep_aspect` the photo's aspect at ~ the
        square's area (each side a multiple of the size multiple)."""
        side = self.working_side(working_size)
        if not keep_aspect:
            return side, side
        height, width = prepared.lightness.shape[-2:]
        scale = side / (height * width) ** 0.5
        multiple = self.size_multiple
        return _round_to_multiple(height * scale, multiple), _round_to_multiple(width * scale, multiple)

    def working_lightness(
        self, prepared: PreparedImage, working_size: WorkingSize = None, *, keep_aspect: bool = False
    ) -> torch.Tensor:
        """The model's input: full-res L area-downsampled (or bilinearly upsampled) to the working shape."""
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

    # --- colorizing --------------------------------------------------------------------------------------------
    def colorize_samples(
        self,
        image: ImageSource | PreparedImage,
        *,
        working_size: WorkingSize = None,
        saturation: float = 1.0,
        keep_aspect: bool = False,
        flip_average: bool = False,
        size_average: int | None = None,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        hints: Sequence[Hint] | None = None,
        **options: Any,
    ) -> list[Image.Image]:
        """Every colouring this colorizer draws of one photo (`num_samples` for a sampler, else one), each of
        the input's size and lightness. `options`: the declared `extra_options` (defaults fill the rest).
        `hints`: colour points in the photo's pixels, for a colorizer that `takes_hints`. `size_average`: a second
        working size (pixels) whose prediction is averaged in (off by default; see the module docstring)."""
        (colourings,) = self._colorize(
            [image],
            working_size=working_size,
            saturation=saturation,
            keep_aspect=keep_aspect,
            flip_average=flip_average,
            size_average=size_average,
            batch_size=1,
            hooks={"progress_callback": progress_callback, "cancel_event": cancel_event},
            options=options,
            hints=self.check_hints(hints),
        )
        return colourings

    def colorize(
        self,
        image: ImageSource | PreparedImage,
        *,
        working_size: WorkingSize = None,
        saturation: float = 1.0,
        keep_aspect: bool = False,
        flip_average: bool = False,
        size_average: int | None = None,
        progress_callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        hints: Sequence[Hint] | None = None,
        **options: Any,
    ) -> Image.Image:
        """One colouring (a sampler's first, from its seed); the arguments of `colorize_samples`."""
        if self.draws_samples:
            options[NUM_SAMPLES] = 1
        return self.colorize_samples(
            image,
            working_size=working_size,
            saturation=saturation,
            keep_aspect=keep_aspect,
            flip_average=flip_average,
            size_average=size_average,
            progress_callback=progress_callback,
            cancel_event=cancel_event,
            hints=hints,
            **options,
        )[0]

    def colorize_batch(
        self,
        images: Iterable[ImageSource | PreparedImage],
        *,
        working_size: WorkingSize = None,
        saturation: float = 1.0,
        batch_size: int = 8,
        keep_aspect: bool = False,
        flip_average: bool = False,
        size_average: int | None = None,
        **options: Any,
    ) -> list[Image.Image]:
        """One colouring per photo (a sampler's first), running the model on `batch_size` photos at a time."""
        if self.draws_samples:
            options[NUM_SAMPLES] = 1
        colourings = self._colorize(
            images,
            working_size=working_size,
            saturation=saturation,
            keep_aspect=keep_aspect,
            flip_average=flip_average,
            size_average=size_average,
            batch_size=batch_size,
            hooks={},
            options=options,
        )
        return [first for first, *_ in colourings]

    def _colorize(
        self,
        images: Iterable[ImageSource | PreparedImage],
        *,
        working_size: WorkingSize,
        saturation: float,
        keep_aspect: bool,
        flip_average: bool,
        batch_size: int,
        size_average: int | None = None,
        hooks: dict[str, Any],
        options: Mapping[str, Any],
        hints: Sequence[Hint] = (),
    ) -> list[list[Image.Image]]:
        # Every argument is checked before a photo is decoded or the model runs.
        check_saturation(saturation)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        resolved = self.resolve_options(options)
        count = resolved.get(NUM_SAMPLES, 1)
        self.working_side(working_size)
        second_size = self.check_size_average(size_average, working_size)
        results: list[list[Image.Image]] = []

        def run_group(group: Sequence[PreparedImage]) -> None:
            _check_not_cancelled(hooks.get("cancel_event"))
            small = torch.cat([self.working_lightness(p, working_size, keep_aspect=keep_aspect) for p in group])
            # (len(group) * count, 2, h, w), image-major; hints (one photo) become a map at each pass's shape
            ab = self.predict_working_ab(
                group,
                small,
                flip_average=flip_average,
                size_average=second_size,
                keep_aspect=keep_aspect,
                hints=hints,
                **hooks,
                **resolved,
            )
            for i, prepared in enumerate(group):
                rows = range(i * count, (i + 1) * count)
                lightness = small[i : i + 1]
                results.append([self.finish(prepared, lightness, ab[r : r + 1], saturation=saturation) for r in rows])

        def flush(group: Sequence[PreparedImage]) -> None:
            if not keep_aspect:
                run_group(group)
                return
            for prepared in group:  # rectangles of different aspects cannot share a batch
                run_group([prepared])

        pending: list[PreparedImage] = []
        for image in images:
            pending.append(prepare_image(image))
            if len(pending) == batch_size:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
        return results
