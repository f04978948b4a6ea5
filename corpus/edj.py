"""Read the JPEG photographs stored inside Enlightenment ``.edj`` files (Eet containers).

Used by the corpus builder (``python -m corpus.photos build``): enlightenment-data ships its photo
wallpapers as ``.edj`` themes whose images are plain JPEG entries. An Eet file (format 2) is::

    magic 0x1ee70f42, entry count N, dictionary count D          (big-endian 32-bit integers)
    N directory entries of 6 integers: offset, size, data_size, name_offset, name_size, flags
    D dictionary entries (for Eet data descriptors; not needed here), then names and entry data

``flags`` bit 0 means compressed, bit 1 ciphered, bit 2 alias. Lossy images (``edje/images/N``) are written
uncompressed, so their bytes are the JPEG file itself. A wallpaper may also carry smaller variants; the
manifest keeps the largest JPEG per file (:func:`largest_jpeg`). :func:`write_edj` builds a valid file for
tests.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

MAGIC = 0x1EE70F42
HEADER_INTS = 3
ENTRY_INTS = 6
FLAG_COMPRESSED, FLAG_CIPHERED, FLAG_ALIAS = 0x1, 0x2, 0x4
JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"


class EdjError(ValueError):
    """The bytes are not an Eet file this reader understands."""


def read_edj(data: bytes) -> dict[str, bytes]:
    """``{entry name: bytes}`` for the plain (uncompressed, unciphered, non-alias) entries of an Eet file."""
    if len(data) < 4 * HEADER_INTS:
        raise EdjError(f"too short for an Eet file ({len(data)} bytes)")
    magic, count, _dictionary_count = struct.unpack_from(">3I", data)
    if magic != MAGIC:
        raise EdjError(f"not an Eet file (magic {magic:#010x}, expected {MAGIC:#010x})")
    directory_end = 4 * (HEADER_INTS + ENTRY_INTS * count)
    if directory_end > len(data):
        raise EdjError(f"the directory of {count} entries runs past the end of the file")
    entries: dict[str, bytes] = {}
    for index in range(count):
        offset, size, data_size, name_offset, name_size, flags = struct.unpack_from(
            ">6I", data, 4 * (HEADER_INTS + ENTRY_INTS * index)
        )
        if offset + size > len(data) or name_offset + name_size > len(data):
            raise EdjError(f"entry {index} points past the end of the file")
        name = data[name_offset : name_offset + name_size].split(b"\0", 1)[0].decode("utf-8", "replace")
        if flags & (FLAG_COMPRESSED | FLAG_CIPHERED | FLAG_ALIAS) or size != data_size:
            continue  # images are stored plain; compressed entries hold theme data, not photographs
        entries[name] = data[offset : offset + size]
    return entries


def jpegs(data: bytes) -> dict[str, bytes]:
    """The entries of an Eet file that are complete JPEG images PIL can decode."""
    found = {}
    for name, blob in read_edj(data).items():
        if not (blob.startswith(JPEG_SOI) and blob.rstrip(b"\0").endswith(JPEG_EOI)):
            continue
        try:
            with Image.open(io.BytesIO(blob)) as image:
                if image.format == "JPEG":
                    image.verify()
                    found[name] = blob
        except (OSError, SyntaxError):
            continue
    return found


def largest_jpeg(data: bytes) -> tuple[str, bytes]:
    """``(entry name, JPEG bytes)`` of the JPEG with the most pixels (then the most bytes) in an Eet file."""

    def pixels(blob: bytes) -> int:
        with Image.open(io.BytesIO(blob)) as image:
            return image.size[0] * image.size[1]

    found = jpegs(data)
    if not found:
        raise EdjError("no JPEG entry in this Eet file")
    name = max(found, key=lambda n: (pixels(found[n]), len(found[n]), n))
    return name, found[name]


def write_edj(entries: dict[str, bytes], *, compressed: tuple[str, ...] = ()) -> bytes:
    """A valid Eet file holding ``entries``; names in ``compressed`` are flagged compressed (stored as given)."""
    count = len(entries)
    names = b"".join(name.encode() + b"\0" for name in entries)
    directory_end = 4 * (HEADER_INTS + ENTRY_INTS * count)
    name_offset, data_offset = directory_end, directory_end + len(names)
    directory, blobs = b"", b""
    for name, blob in entries.items():
        flags = FLAG_COMPRESSED if name in compressed else 0
        size = len(name.encode()) + 1
        directory += struct.pack(">6I", data_offset + len(blobs), len(blob), len(blob), name_offset, size, flags)
        name_offset += size
        blobs += blob
    return struct.pack(">3I", MAGIC, count, 0) + directory + names + blobs
