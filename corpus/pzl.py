"""Read jigzo puzzle files (``.pzl``) and recover the photograph each one was cut from.

Used by the corpus builder (``python -m corpus.photos build``). A ``.pzl`` file is a small line-based
container::

    PzlF\\n 0.1\\n <puzzle name>\\n <homepage url>\\n
    then members, each: <member name>\\n <byte size>\\n <bytes>

jigzo 0.6 puzzles hold four members: ``NAME.map`` (text), ``NAME-t.jpg`` (a thumbnail), ``NAME.png`` (the
piece masks) and ``NAME.jpg``, a 1024x1024 texture atlas. The map's ``image X Y W H ...`` line says where
the whole, uncut picture sits in that atlas; the ``cropNNN`` lines place the separate pieces elsewhere.
:func:`write_pzl` builds a valid file for tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

MAGIC = b"PzlF"


class PzlError(ValueError):
    """The bytes are not a jigzo puzzle this reader understands."""


@dataclass
class Puzzle:
    """A parsed ``.pzl`` file: header fields plus ``{member name: bytes}`` in file order."""

    version: str
    name: str
    url: str
    members: dict[str, bytes] = field(default_factory=dict)

    @property
    def map_member(self) -> str:
        names = [n for n in self.members if n.endswith(".map")]
        if not names:
            raise PzlError(f"Puzzle {self.name!r} has no .map member, so the picture cannot be located.")
        return names[0]

    @property
    def image_member(self) -> str:
        """The texture atlas: the image named like the map, not the ``-t`` thumbnail or the ``.png`` masks."""
        stem = self.map_member[: -len(".map")]
        for ext in (".jpg", ".jpeg"):
            if stem + ext in self.members:
                return stem + ext
        raise PzlError(f"Puzzle {self.name!r} has no {stem}.jpg texture member.")

    def image_box(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of the uncut picture inside the atlas, from the map's ``image`` line."""
        for line in self.members[self.map_member].decode("utf-8", "replace").splitlines():
            parts = line.split()
            if parts[:1] == ["image"] and len(parts) >= 5:
                x, y, w, h = (int(v) for v in parts[1:5])
                return x, y, x + w, y + h
        raise PzlError(f"Puzzle {self.name!r} map has no 'image X Y W H' line.")

    def photo(self) -> Image.Image:
        """The uncut picture as an RGB PIL image."""
        with Image.open(io.BytesIO(self.members[self.image_member])) as atlas:
            box = self.image_box()
            if box[2] > atlas.width or box[3] > atlas.height:
                raise PzlError(f"Puzzle {self.name!r} map places the picture outside its {atlas.size} atlas.")
            return atlas.convert("RGB").crop(box)


def read_pzl(data: bytes) -> Puzzle:
    """Parse the bytes of a ``.pzl`` file."""
    pos = 0

    def line() -> str:
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise PzlError("Truncated jigzo puzzle (a header line has no end).")
        text, pos = data[pos:end].decode("utf-8", "replace"), end + 1
        return text

    if not data.startswith(MAGIC + b"\n"):
        raise PzlError("Not a jigzo puzzle (missing 'PzlF' magic); pass a .pzl file from jigzo-data.")
    line()
    puzzle = Puzzle(version=line(), name=line(), url=line())
    while pos < len(data):
        name, size_text = line(), line()
        if not size_text.isdigit():
            raise PzlError(f"Corrupt jigzo puzzle: member {name!r} has size {size_text!r}.")
        size = int(size_text)
        if pos + size > len(data):
            raise PzlError(f"Truncated jigzo puzzle: member {name!r} runs past the end of the file.")
        puzzle.members[name] = data[pos : pos + size]
        pos += size
    return puzzle


def write_pzl(name: str, members: dict[str, bytes], *, version: str = "0.1", url: str = "") -> bytes:
    """Build ``.pzl`` bytes holding ``members`` in order; the inverse of :func:`read_pzl`, used by tests."""
    out = bytearray(MAGIC + b"\n" + f"{version}\n{name}\n{url}\n".encode())
    for member, blob in members.items():
        out += f"{member}\n{len(blob)}\n".encode() + blob
    return bytes(out)
