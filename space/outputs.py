"""Where the app writes the PNGs it shows and offers for download: a private temp folder, pruned by age.

    outputs = OutputFolder()                       # tempfile.mkdtemp(prefix="colorlab-outputs-<pid>-")
    folder = outputs.new_request()                 # one fresh subfolder per request
    path = outputs.save_png(image, folder / "photo_pix2pix.png")

Never the working directory (a Space's app folder is read-only and a clone must stay clean). Gradio
copies what a handler returns into its own cache, so files here only need to outlive one request;
folders older than `max_age_s` are deleted whenever a new one is made, and all of it at exit; at start, the
folders of app processes that were killed are deleted too.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image

from models.fileperm import safe_stem  # noqa: F401  (re-exported: the app and deploy name their files with it)

# zlib level 1: a 12-megapixel PNG is written ~2x faster than at the default level for ~10% more bytes.
PNG_COMPRESS_LEVEL = 1


_REQUEST_FOLDER = re.compile(r"^[0-9a-f]{32}$")  # uuid4().hex, as new_request() names them


OUTPUTS_PREFIX = "colorlab-outputs-"
_OWNED_FOLDER = re.compile(rf"^{OUTPUTS_PREFIX}(\d+)-")  # colorlab-outputs-<pid>-<random>


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def prune_dead_output_folders(parent: Path | None = None) -> list[Path]:
    """Delete the output folders of app processes that no longer run (killed with SIGKILL, OOM, power loss).

    Exit handlers remove a folder when the app stops normally; after a kill -9 it stayed behind (up to 208 MB each).
    Folders carry their process id in the name, so only folders whose process is gone are removed; a reused
    process id only means a folder is kept a little longer.
    """
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{OUTPUTS_PREFIX}*"):
        match = _OWNED_FOLDER.match(folder.name)
        if (
            match
            and folder.is_dir()
            and int(match.group(1)) != os.getpid()
            and not _process_alive(int(match.group(1)))
        ):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class OutputFolder:
    def __init__(self, root: Path | None = None, *, max_age_s: float = 3600.0) -> None:
        if root is None:
            prune_dead_output_folders()
            root = Path(tempfile.mkdtemp(prefix=f"{OUTPUTS_PREFIX}{os.getpid()}-"))
            atexit.register(shutil.rmtree, root, True)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s

    def new_request(self) -> Path:
        self.prune()
        folder = self.root / uuid.uuid4().hex  # random: file URLs must not be guessable or reveal anything
        folder.mkdir()
        return folder

    def prune(self) -> None:
        """Remove request folders older than `max_age_s`; anything else under root (the examples) stays."""
        cutoff = time.time() - self.max_age_s
        for folder in self.root.iterdir():
            if not _REQUEST_FOLDER.match(folder.name):
                continue
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another request pruned it first
                continue

    @staticmethod
    def save_png(image: Image.Image, path: Path) -> Path:
        png_ready(image).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return path


# Modes shown as they are; CMYK, LAB, YCbCr, HSV, 16/32-bit integer and float uploads are converted for display
# the way the colorizer reads them (a 32-bit image holding 8-bit values would otherwise be saved nearly black).
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})


def png_ready(image: Image.Image) -> Image.Image:
    """`image` in a mode PNG can hold, converted the way the colorizer reads it (models.imageio.image_to_tensor)."""
    if image.mode in PNG_MODES:
        return image
    from models.imageio import image_to_tensor  # torch: only for the rare modes PNG cannot hold

    rgb, alpha = image_to_tensor(image)
    array = (rgb.permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype("uint8")
    converted = Image.fromarray(array, "RGB")
    if alpha is not None:
        converted.putalpha(Image.fromarray(alpha, "L"))
    return converted
