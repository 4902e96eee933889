"""Atomic file writes: a crash never leaves half a file under the final name."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from report_lib.errors import OutputWriteError

_HINTS = {
    errno.ENOSPC: "free space on that disk or point the output folder elsewhere",
    errno.EDQUOT: "free space within your quota or point the output folder elsewhere",
    errno.EACCES: "make the folder writable or point the output folder elsewhere",
    errno.EROFS: "the file system is read-only: point the output folder elsewhere",
}


def write_atomic(path: Path, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    Raises:
        OutputWriteError: (also an OSError) the disk is full, the folder is not writable...; the temporary file is
            removed and any older file at ``path`` is untouched.
    """
    payload = data.encode(encoding) if isinstance(data, str) else data
    try:
        _write_and_rename(path, payload)
    except OSError as exc:
        hint = _HINTS.get(exc.errno or 0, "check the folder and the disk")
        raise OutputWriteError(
            f"Could not write {path} ({len(payload):,} bytes): {exc.strerror or exc}. Nothing was changed at that "
            f"path (an older file there is kept); {hint}, then run again.",
            path=str(path),
            errno=exc.errno,
        ) from exc
    return path


def _write_and_rename(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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


def replace_atomic(source: Path, target: Path) -> Path:
    """Move a finished file (written elsewhere on the same filesystem) to its final name in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return target


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
