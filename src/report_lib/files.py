"""Atomic file writes: a crash never leaves half a file under the final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(payload)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes files private; reports are meant to be read
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return path


def replace_atomic(source: Path, target: Path) -> Path:
    """Move a finished file (written elsewhere on the same filesystem) to its final name in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return target


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
