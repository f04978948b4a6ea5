"""Reading what users upload: size limits before decoding, the project's own decoder, one large image at a time.

    reader = UploadReader.from_env()                 # COLORLAB_MAX_UPLOAD_MB, COLORLAB_MAX_UPLOAD_MEGAPIXELS
    with reader.open(path_from_gradio) as upload:    # ImageInputError: one sentence naming the user's own file name
        upload.image, upload.data, upload.name       # decoded PIL image, the file's bytes, the file's own name

The UI hands handlers the uploaded file itself (space.ui_components.UploadedImage), so a zero-byte file, a text
file named .png, a HEIC photo or a decompression bomb reaches `models.imageio.open_image` and the user gets the
same sentence the CLI prints, naming the file by its own name rather than the server's temporary path.

Memory: a decoded 100-megapixel photo and its full-resolution colourings cost about 3 GB, so uploads above
`large_pixels` are processed one at a time (the block under `open` holds the lock); smaller ones run in parallel.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from models.imageio import ImageInputError, open_image

DEFAULT_MAX_UPLOAD_MB = 40  # a 12-MP JPEG is ~5 MB, a 24-MP 16-bit PNG ~40 MB
DEFAULT_MAX_MEGAPIXELS = 50  # a 50-MP camera; ~1.6 GB through the pipeline
DEFAULT_LARGE_MEGAPIXELS = 16  # above this, one upload at a time


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}.") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}.")
    return value


@dataclass(frozen=True)
class Upload:
    data: bytes  # the file exactly as uploaded (hashed for the ratings store, kept only with consent)
    image: Image.Image  # decoded, EXIF orientation applied
    name: str  # the user's own file name, for messages


def display_name(path: str | os.PathLike[str]) -> str:
    """The file's own name (Gradio keeps the uploaded name in its cache), never the folder it sits in."""
    return Path(path).name or "the uploaded file"


class UploadReader:
    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1_000_000,
        max_pixels: int = DEFAULT_MAX_MEGAPIXELS * 1_000_000,
        large_pixels: int = DEFAULT_LARGE_MEGAPIXELS * 1_000_000,
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.large_pixels = int(large_pixels)
        self._large = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UploadReader:
        env = os.environ if env is None else env
        megabytes = _env_number(env, "COLORLAB_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)
        megapixels = _env_number(env, "COLORLAB_MAX_UPLOAD_MEGAPIXELS", DEFAULT_MAX_MEGAPIXELS)
        return cls(
            max_bytes=int(megabytes * 1_000_000),
            max_pixels=int(megapixels * 1_000_000),
            large_pixels=int(min(DEFAULT_LARGE_MEGAPIXELS, megapixels) * 1_000_000),
        )

    def read_bytes(self, path: str | os.PathLike[str]) -> bytes:
        """The uploaded file's bytes, refused above the size limit before reading it."""
        name = display_name(path)
        try:
            size = Path(path).stat().st_size
            if size > self.max_bytes:
                raise ImageInputError(
                    f"{name} is {size / 1e6:.1f} MB, above the {self.max_bytes / 1e6:g} MB upload limit; "
                    "upload a smaller or more compressed photo."
                )
            return Path(path).read_bytes()
        except OSError:
            raise ImageInputError(f"{name} could not be read; upload it again.") from None

    def _header_pixels(self, data: bytes) -> int:
        """Width x height from the header alone (0 when PIL cannot tell: open_image then says why)."""
        try:
            with Image.open(io.BytesIO(data)) as probe:
                return probe.size[0] * probe.size[1]
        except Exception:  # any unreadable file: open_image below produces the user's sentence
            return 0

    @contextmanager
    def open(self, path: str | os.PathLike[str]) -> Iterator[Upload]:
        """Read, check and decode an upload; large images hold this reader's lock (the app shares one reader) for the
        whole block."""
        name = display_name(path)
        data = self.read_bytes(path)
        pixels = self._header_pixels(data)  # open_image refuses more than max_pixels, also from the header
        if pixels > self.large_pixels:
            with self._large:  # peak memory is in decoding and full-resolution output: one such job at a time
                yield Upload(data, open_image(data, max_pixels=self.max_pixels, name=name), name)
        else:
            yield Upload(data, open_image(data, max_pixels=self.max_pixels, name=name), name)
