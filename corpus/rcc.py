"""Read files out of a compiled Qt resource file (``.rcc``, magic ``qres``) without Qt.

GCompris ships its activity images inside ``.rcc`` bundles; the corpus builder
(``python -m corpus.photos build``) uses :func:`read_rcc` to pull the photographs out.

Format (Qt ``rcc``, versions 1-3, all integers big-endian)::

    header   b"qres", u32 version, u32 tree_offset, u32 data_offset, u32 names_offset[, u32 flags (v3)]
    tree     nodes of 14 bytes (v1) or 22 bytes (v2+: an extra u64 mtime):
             u32 name_offset, u16 flags, then
               directory (flags & 2): u32 child_count, u32 first_child_index
               file:                  u16 territory, u16 language, u32 data_offset
    names    u16 length, u32 hash, length UTF-16BE code units
    data     u32 size, bytes; zlib-compressed entries (flags & 1) start with a u32 uncompressed size
             (``qCompress`` layout), zstd entries (flags & 4) are one zstd frame.

:func:`write_rcc` is the inverse for tests: it builds a small valid file so the reader can be tested
without the real packages.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_ZSTD = 0x04


class RccError(ValueError):
    """The bytes are not a Qt resource file this reader understands."""


def _name_hash(name: str) -> int:
    """qt_hash over UTF-16 code units, as rcc stores it (only written, never checked on read)."""
    h = 0
    for unit in struct.unpack(f">{len(name.encode('utf-16-be')) // 2}H", name.encode("utf-16-be")):
        h = ((h << 4) + unit) & 0xFFFFFFFF
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def _decompress(payload: bytes, flags: int, path: str) -> bytes:
    if flags & FLAG_ZSTD:
        try:
            import zstandard
        except ImportError as err:  # GCompris 3.x uses zlib only; zstd is rare
            raise RccError(f"{path} is zstd-compressed; install the 'zstandard' package to read it.") from err
        return zstandard.ZstdDecompressor().decompress(payload)
    if flags & FLAG_COMPRESSED:
        # qCompress prefixes the zlib stream with the expected size; trust zlib, not the prefix.
        return zlib.decompress(payload[4:])
    return payload


def read_rcc(data: bytes, suffixes: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """Return ``{resource path: file bytes}`` for every file in the rcc ``data``.

    Paths use ``/`` separators without a leading slash (``gcompris/src/.../lion.webp``). ``suffixes``
    (lower-case, with dots) limits which files are decompressed, which keeps big bundles fast.
    """
    if len(data) < 20 or data[:4] != MAGIC:
        raise RccError("Not a Qt resource file (missing 'qres' magic); pass a compiled .rcc file.")
    version, tree_off, data_off, names_off = struct.unpack_from(">4I", data, 4)
    if version not in (1, 2, 3):
        raise RccError(f"Unsupported Qt resource version {version}; this reader handles versions 1-3.")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names_off + offset)
        start = names_off + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}
    stack: list[tuple[int, str]] = [(0, "")]
    seen: set[int] = set()
    while stack:
        index, prefix = stack.pop()
        if index in seen:  # a corrupt tree must not loop forever
            raise RccError("Corrupt Qt resource tree (a directory is its own descendant).")
        seen.add(index)
        pos = tree_off + index * node_size
        if pos + node_size > len(data):
            raise RccError("Truncated Qt resource file (tree points past the end of the file).")
        name_off, flags = struct.unpack_from(">IH", data, pos)
        name = name_at(name_off) if index else ""
        path = f"{prefix}/{name}" if prefix else name
        if flags & FLAG_DIRECTORY:
            count, first = struct.unpack_from(">II", data, pos + 6)
            stack.extend((first + i, path) for i in range(count))
            continue
        if suffixes is not None and not path.lower().endswith(suffixes):
            continue
        (offset,) = struct.unpack_from(">I", data, pos + 10)
        (size,) = struct.unpack_from(">I", data, data_off + offset)
        start = data_off + offset + 4
        if start + size > len(data):
            raise RccError(f"Truncated Qt resource file ({path} runs past the end of the file).")
        files[path] = _decompress(data[start : start + size], flags, path)
    return files


def write_rcc(files: dict[str, bytes], *, compress: bool = True, version: int = 3) -> bytes:
    """Build a Qt resource file holding ``files`` (``{"dir/name.ext": bytes}``); used by the tests.

    Compressed entries use the qCompress layout rcc writes (u32 size + zlib stream).
    """
    tree: dict = {}
    for path, blob in files.items():
        parts = path.strip("/").split("/")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = blob

    names = bytearray()
    name_offsets: dict[str, int] = {}
    payload = bytearray()
    nodes: list[bytes] = []

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(encoded) // 2, _name_hash(name)) + encoded)
        return name_offsets[name]

    # Breadth-first layout: a directory's children occupy consecutive node indices, as rcc requires.
    queue: list[tuple[str, dict | bytes]] = [("", tree)]
    next_index = 1
    mtime = b"" if version == 1 else struct.pack(">Q", 0)
    for name, value in queue:
        if isinstance(value, dict):
            children = sorted(value.items())
            nodes.append(struct.pack(">IHII", name_offset(name), FLAG_DIRECTORY, len(children), next_index) + mtime)
            queue.extend(children)
            next_index += len(children)
        else:
            blob = struct.pack(">I", len(value)) + zlib.compress(value) if compress else value
            flags = FLAG_COMPRESSED if compress else 0
            nodes.append(struct.pack(">IHHHI", name_offset(name), flags, 0, 1, len(payload)) + mtime)
            payload.extend(struct.pack(">I", len(blob)) + blob)

    header_size = 24 if version >= 3 else 20
    tree_bytes = b"".join(nodes)
    data_off = header_size
    names_off = data_off + len(payload)
    tree_off = names_off + len(names)
    header = MAGIC + struct.pack(">4I", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + bytes(payload) + bytes(names) + tree_bytes
