"""Safe image opening and mode handling shared by the pipeline, CLI, app and trainer.

Every failure is an `ImageInputError` (a ValueError) with one sentence saying what is wrong with
the file and what to do. Sizes are checked from the header, before any pixel is decoded, so a
decompression bomb costs no memory.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Larger than any camera (a 12-MP phone photo is 12 M); 20000x20000 = 400 M is refused before decoding.
MAX_PIXELS = 100_000_000
ImageSource = str | os.PathLike[str] | bytes | Image.Image


class ImageInputError(ValueError):
    """An input image that cannot be colorized, with the reason in one sentence."""


def _describe(source: ImageSource, name: str | None = None) -> str:
    if name:
        return name
    return "the uploaded image" if isinstance(source, bytes | Image.Image) else str(source)


# Formats people upload that this reader cannot decode, recognised by their first bytes so the sentence says what
# the file is instead of "corrupt". ISO-BMFF brands at bytes 8-12 ("ftyp" at 4-8): HEIC/HEIF from phones.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def _unsupported_format(head: bytes) -> str | None:
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "is a HEIC/HEIF photo, which ColorLab cannot decode; export it as JPEG or PNG first"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in head.lower()):
        return "is an SVG drawing, not a photograph; export it as PNG or JPEG first"
    return None


def check_pixel_count(width: int, height: int, *, what: str = "the image", max_pixels: int = MAX_PIXELS) -> None:
    if width * height > max_pixels:
        raise ImageInputError(
            f"{what} is {width}x{height} ({width * height / 1e6:.3g} megapixels), above the {max_pixels / 1e6:g}-"
            "megapixel limit; downscale it first."
        )


def open_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
    name: str | None = None,
) -> Image.Image:
    """Open and fully decode an image (first frame of animations), with EXIF orientation applied.

    `draft_size` lets JPEGs decode at a reduced DCT scale that is still at least that large (2-4x
    faster when the caller downsamples anyway, as training crops do). `name` is how messages call the
    file (the app passes the upload's own file name, so no server path reaches the user).
    """
    what = _describe(source, name)
    if isinstance(source, Image.Image):
        check_pixel_count(*source.size, what=what, max_pixels=max_pixels)
        return ImageOps.exif_transpose(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageInputError(f"{what} is empty (0 bytes); it is not an image.")
        head = source[:1024]
        stream: io.BytesIO | str = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{what} does not exist or is not a file.")
        try:  # permissions, a vanished network file: the input's fault, said as such (not a write error)
            if path.stat().st_size == 0:
                raise ImageInputError(f"{what} is empty (0 bytes); it is not an image.")
            with path.open("rb") as handle:
                head = handle.read(1024)
        except OSError as error:
            raise ImageInputError(f"{what} could not be read ({error.strerror or error}).") from None
        stream = str(path)
    unsupported = _unsupported_format(head)
    if unsupported:
        raise ImageInputError(f"{what} {unsupported}.")
    try:
        # Image.open reads only the header (and raises DecompressionBombError far above our limit).
        image = Image.open(stream)
        check_pixel_count(*image.size, what=what, max_pixels=max_pixels)  # header only: nothing decoded yet
        if getattr(image, "is_animated", False):
            image.seek(0)  # colorize the first frame of animations
        if draft_size and image.format == "JPEG":
            image.draft("RGB", draft_size)
        image.load()
    except ImageInputError:
        raise
    except UnidentifiedImageError as error:
        raise ImageInputError(f"{what} is not an image PIL can read (wrong extension or corrupt file).") from error
    except Image.DecompressionBombError as error:
        raise ImageInputError(f"{what} is too large to decode safely; downscale it first.") from error
    except (OSError, SyntaxError, ValueError) as error:
        if "truncated" in str(error).lower() or isinstance(error, OSError):
            raise ImageInputError(f"{what} is truncated or corrupt ({error}); re-export or re-download it.") from error
        raise ImageInputError(f"{what} could not be decoded ({error}).") from error
    return ImageOps.exif_transpose(image)


def _high_bit_depth_to_unit(array: np.ndarray, mode: str) -> np.ndarray:
    """16-bit / 32-bit integer or float grayscale -> float32 in [0, 1]."""
    array = array.astype(np.float32)
    if array.size == 0:
        return array
    if mode.startswith("I;16"):
        scale = 65535.0  # the format fixes the range: a dark 16-bit photo (peak 200) must stay dark
    else:  # "I" and "F" carry no range: infer it from the values (8-bit promoted, 16-bit, or unit floats)
        peak = float(array.max())
        scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    return np.clip(array / scale, 0.0, 1.0)


def image_to_tensor(image: Image.Image) -> tuple[torch.Tensor, np.ndarray | None]:
    """PIL image of any mode -> (RGB float tensor (3, H, W) in [0, 1], alpha uint8 (H, W) or None)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = torch.from_numpy(_high_bit_depth_to_unit(np.asarray(image), image.mode))
        return gray.unsqueeze(0).expand(3, -1, -1).contiguous(), None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.array(image.convert("RGBA"))  # a writable copy: torch refuses to wrap PIL's read-only buffer
        alpha = rgba[..., 3].copy()
        rgb = rgba[..., :3]
    else:
        alpha = None
        rgb = np.array(image.convert("RGB"))  # L, 1, P, CMYK, YCbCr, LAB, HSV all land here; writable copy
    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    return tensor, alpha


def is_grayscale_mode(image: Image.Image) -> bool:
    return image.mode in ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never silently gray
# Pillow warns from 89 MP; our own limit (MAX_PIXELS above, checked on the header) is the one that applies.
# A module-level filter, not warnings.catch_warnings() per call: that is not thread-safe, and the app decodes
# uploads on several threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
