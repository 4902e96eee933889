"""Faults around writing outputs: a process killed mid-write, an error inside the write, a full disk.

The promise under test: the final path holds the old file or the new one, never half of one; a failure says what
was wrong and where, and leaves no temporary file behind.

The full-disk tests use a real 256 KiB tmpfs mounted by the test (needs root, as in this project's CI container);
without root they skip with that reason, and ``test_an_error_inside_the_write_keeps_the_old_file`` still covers the
code path by failing the write itself (ENOSPC raised after half the bytes went to the temporary file).
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from report_lib.config import Settings
from report_lib.errors import DeliveryError, OutputWriteError
from report_lib.files import write_atomic
from report_lib.render.delivery import deliver
from report_lib.render.email import build_digest_email
from report_lib.render.portal import PortalEntry, render_portal

OLD = b'{"report": "old"}'
PAYLOAD_BYTES = 2 * 1024 * 1024
DISK_BYTES = 256 * 1024


@contextmanager
def _python(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``script``; killed (if still running) and reaped on exit."""
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            yield child
        finally:
            child.kill()
            child.wait(timeout=30)


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real disk that fills up (ENOSPC from the kernel, not from a patched function)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the in-write ENOSPC test covers the code path")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(disk: Path, *, leave: int) -> None:
    """Fill ``disk`` so that about ``leave`` bytes remain free."""
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))


def test_a_process_killed_between_write_and_rename_leaves_the_old_file(tmp_path: Path) -> None:
    """The new bytes are fully on disk (fsynced) in the temporary file when the process dies: the report stays old."""
    target = tmp_path / "report.html"
    target.write_bytes(OLD)
    with _python(
        """
        import os, sys, time
        from pathlib import Path
        from report_lib.files import write_atomic
        real_fsync = os.fsync
        def fsync_then_hang(fd):
            real_fsync(fd)
            print("synced", flush=True)
            time.sleep(120)
        os.fsync = fsync_then_hang
        write_atomic(Path(sys.argv[1]), b"N" * int(sys.argv[2]))
        """,
        str(target),
        str(PAYLOAD_BYTES),
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "synced"
        [temporary] = _temporaries(tmp_path)
        assert temporary.stat().st_size == PAYLOAD_BYTES  # the whole new file exists, under another name
        assert target.read_bytes() == OLD
    assert target.read_bytes() == OLD


def test_a_process_killed_at_random_moments_never_leaves_half_a_file(tmp_path: Path) -> None:
    """A writer rewriting one report as fast as it can, killed at random times: every survivor is a whole file."""
    target = tmp_path / "report.ipynb"
    versions = {b"A" * PAYLOAD_BYTES, b"B" * PAYLOAD_BYTES}
    rng = random.Random(8)
    for _ in range(6):
        target.write_bytes(OLD)
        with _python(
            """
            import sys
            from pathlib import Path
            from report_lib.files import write_atomic
            path, size = Path(sys.argv[1]), int(sys.argv[2])
            print("writing", flush=True)
            for i in range(100_000):
                write_atomic(path, (b"A" if i % 2 else b"B") * size)
            """,
            str(target),
            str(PAYLOAD_BYTES),
        ) as child:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "writing"
            time.sleep(rng.uniform(0.0, 0.3))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert target.read_bytes() in versions | {OLD}


class _FailingHalfway:
    """A file object that writes half of what it is given, then fails as a full disk does."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> _FailingHalfway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


def test_an_error_inside_the_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(OLD)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: _FailingHalfway(real_fdopen(*args, **kwargs)))
    with pytest.raises(OutputWriteError, match=r"report\.html .*No space left on device.*older file there is kept"):
        write_atomic(target, b"N" * 10_000)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _temporaries(tmp_path) == []


def test_a_full_disk_refuses_the_write_and_keeps_the_old_file(tiny_disk: Path) -> None:
    target = tiny_disk / "report.html"
    target.write_bytes(OLD)
    _fill(tiny_disk, leave=16 * 1024)
    with pytest.raises(OutputWriteError, match=r"No space left on device.*free space on that disk") as caught:
        write_atomic(target, b"N" * (64 * 1024))
    assert caught.value.errno == errno.ENOSPC
    assert isinstance(caught.value, OSError)  # callers that catch OSError still do
    assert caught.value.path == str(target)
    assert target.read_bytes() == OLD
    assert _temporaries(tiny_disk) == []
    write_atomic(target, b"small")  # what fits is still written
    assert target.read_bytes() == b"small"


def test_a_full_disk_keeps_the_old_portal_page(tiny_disk: Path) -> None:
    page = tiny_disk / "2024-W10" / "index.html"
    entry = PortalEntry(store="S01", notebook="kpis", status="ok", store_name="Main St", html="S01/kpis.html")
    render_portal([entry], period_label="2024-W10", out_path=page)
    before = page.read_bytes()
    _fill(tiny_disk, leave=1024)
    many = [PortalEntry(store=f"S{i:03d}", notebook="kpis", status="failed", error="x" * 1500) for i in range(60)]
    with pytest.raises(OutputWriteError, match=r"index\.html"):
        render_portal(many, period_label="2024-W10", out_path=page)
    assert page.read_bytes() == before
    assert _temporaries(page.parent) == []


def test_a_full_outbox_is_a_delivery_error_and_writes_nothing(tiny_disk: Path) -> None:
    message = build_digest_email(
        [{"store": "S01", "store_name": "Main St", "status": "ok", "revenue": 10.0}] * 400,
        recipients=["north@example.com"],
        sender="reports@example.com",
        period_label="2024-W10",
        idempotency_key="digest:North:2024-W10",
    )
    _fill(tiny_disk, leave=1024)
    settings = Settings(outbox_dir=tiny_disk / "outbox")
    with pytest.raises(DeliveryError, match=r"No space left on device.*REPORT_OUTBOX_DIR"):
        deliver(message, settings)
    assert list((tiny_disk / "outbox").iterdir()) == []
