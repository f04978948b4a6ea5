"""Names and modes of the files ColorLab writes: safe file-name stems, and modes that honour the user's umask.

`safe_stem` turns a user's file name or a model name into a file-name fragment (the CLI's and the app's outputs).

`tempfile.mkstemp` creates files 0600 on purpose (they are private while being written), so a file renamed into
place from one stays 0600 whatever the umask: colorized photos other users or a web server could not read.
`public_mode()` is the mode `open()` would have given a new file: 0666 minus the umask.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

_lock = threading.Lock()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(text: str, *, separator: str = "_", default: str = "image", max_length: int | None = 60) -> str:
    """`text` as a file-name fragment: runs of other characters become `separator`, no leading or trailing dots
    or separators (no hidden files, no `..`), at most `max_length` characters, `default` when nothing is left."""
    stem = _UNSAFE.sub(separator, text).strip(separator + ".")[:max_length]
    return stem or default


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _lock:  # elsewhere the only way is to set it and put it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def public_mode(base: int = 0o666) -> int:
    """`base` with the umask applied: what a plain `open(path, "w")` would create."""
    return base & ~current_umask()
