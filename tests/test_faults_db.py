"""The database unreachable: at the start of a command (one clear line, exit code 2, nothing written) and in the
middle of a run (the real PostgreSQL server behind a proxy the test cuts while a notebook is running).
"""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import nbformat
import pytest
from sqlalchemy import text

from report_lib.cli import main
from report_lib.config import Settings
from report_lib.run import ledger
from report_lib.run.batch import BatchOptions, BatchResult, run_batch
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec
from report_lib.run.plan import RunRequest
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.schema import stores

SECRET = "db-Pa55word-xyz"


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.db"
    path.write_text("this is a text file, not SQLite\n" * 100)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make_url", "message"),
    [
        (lambda tmp: f"postgresql+psycopg://reporter:{SECRET}@127.0.0.1:1/stores", "Connection refused"),
        (lambda tmp: "sqlite:////proc/no-such-folder/warehouse.db", "Cannot create the folder /proc/no-such-folder"),
        (_not_a_database, "file is not a database"),
    ],
    ids=["postgres-down", "sqlite-folder", "not-a-database"],
)
@pytest.mark.parametrize("command", [["run", "--period", "2024-W10"], ["status"], ["refresh"], ["import", "daily"]])
def test_an_unreachable_database_at_start_is_one_clear_line(
    make_url: Callable[[Path], str],
    message: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if command[0] == "import":
        csv = tmp_path / "daily.csv"
        csv.write_text("store,date,revenue\nS01,2024-03-04,10.5\n")
        command = [*command, str(csv)]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPORT_DATABASE_URL", make_url(tmp_path))
    monkeypatch.setenv("REPORT_OUTPUT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("REPORT_LOG_DIR", str(tmp_path / "logs"))
    assert main(command) == 2
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()[-2:]
    assert any(line.startswith("error: ") for line in error), captured.err
    assert message in captured.err and "REPORT_DATABASE_URL" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert SECRET not in captured.err + captured.out + (tmp_path / "logs" / "report.jsonl").read_text()
    assert not (tmp_path / "reports").exists()


# --- lost mid-run ---------------------------------------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to the database that the test can cut (every connection dropped, new ones reset) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.down = threading.Event()
        self.stopped = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.down.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # a reset, as from a host whose database is gone
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def cut(self) -> None:
        self.down.set()
        with self.lock:
            for end in self.sockets:
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.down.clear()

    def close(self) -> None:
        self.cut()
        self.stopped.set()
        self.thread.join()
        self.listener.close()


WAITER_CELL = """
import os, time
from pathlib import Path
from sqlalchemy import text
from report_lib.record import record
from report_lib.warehouse.engine import create_warehouse_engine
folder = Path(os.environ["REPORT_FAULT_DIR"])
(folder / f"started-{os.getpid()}-{time.monotonic()}").touch()
deadline = time.monotonic() + 180
while not (folder / "release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
engine = create_warehouse_engine(os.environ["REPORT_DATABASE_URL"])
with engine.connect() as conn:  # what every report notebook does: read the warehouse
    record("stores", conn.execute(text("SELECT count(*) FROM stores")).scalar_one())
engine.dispose()
"""


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[str, CuttableProxy]]:
    """The test's PostgreSQL schema reached through a proxy: (url through the proxy, proxy)."""
    parts = urlsplit(postgres_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        proxy.close()


@pytest.fixture
def waiter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('store = "S01"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(textwrap.dedent(WAITER_CELL)),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "waiter.ipynb")
    monkeypatch.setitem(NOTEBOOKS, "waiter", NotebookSpec("waiter", "Waiter", tmp_path / "waiter.ipynb"))
    fault = tmp_path / "fault"
    fault.mkdir()
    monkeypatch.setenv("REPORT_FAULT_DIR", str(fault))
    return fault


@contextmanager
def run_in_background(request: RunRequest, settings: Settings, options: BatchOptions) -> Iterator[list[BatchResult]]:
    """``run_batch`` in a thread (it starts its own worker processes); the list holds its result when it ends."""
    done: list[BatchResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            done.append(run_batch(request, settings, options))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    yield done
    thread.join(timeout=300)
    assert not thread.is_alive(), "the run did not end"
    if errors:
        raise errors[0]


def wait_for(condition: Callable[[], object], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.05)


@pytest.mark.postgres
def test_a_database_outage_mid_notebook_is_survived_by_retrying(
    proxied: tuple[str, CuttableProxy], postgres_url: str, waiter: Path, tmp_path: Path
) -> None:
    """Cut while the notebook runs, back three seconds later: the attempt fails, is recorded, and the retry succeeds."""
    url, proxy = proxied
    direct = create_warehouse_engine(postgres_url)
    ensure_schema(direct)
    with direct.begin() as conn:
        conn.execute(stores.insert().values(code="S01", name="Main St"))
    settings = Settings(database_url=url, output_dir=tmp_path / "reports", parameters_dir=tmp_path / "parameters")
    request = RunRequest(stores="S01", notebooks="waiter", period="2024-03-04:2024-03-10")
    options = BatchOptions(workers=1, formats=(), retries=2, retry_delay=0.5, execution_timeout=120)
    with run_in_background(request, settings, options) as done:
        wait_for(lambda: list(waiter.glob("started-*")), seconds=180, what="the notebook to start")
        proxy.cut()
        (waiter / "release").touch()
        time.sleep(3)
        proxy.restore()
    [result] = done
    [job] = result.results
    assert (job.status, job.attempts) == ("ok", 2), job.error
    runs = ledger.recent_runs(direct).sort_values("attempt")
    assert list(runs.status) == ["failed", "ok"]
    assert "OperationalError" in runs.error.iloc[0]
    with direct.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_runs WHERE status = 'running'")).scalar_one() == 0
    assert Path(job.outputs["ipynb"]).exists()
    direct.dispose()


@pytest.mark.postgres
def test_a_database_gone_for_good_mid_run_fails_the_job_clearly(
    proxied: tuple[str, CuttableProxy], postgres_url: str, waiter: Path, tmp_path: Path
) -> None:
    """Cut for the rest of the run: the job fails with the database named, the run ends, the portal is written."""
    url, proxy = proxied
    direct = create_warehouse_engine(postgres_url)
    ensure_schema(direct)
    with direct.begin() as conn:
        conn.execute(stores.insert().values(code="S01", name="Main St"))
    settings = Settings(database_url=url, output_dir=tmp_path / "reports", parameters_dir=tmp_path / "parameters")
    request = RunRequest(stores="S01", notebooks="waiter", period="2024-03-04:2024-03-10")
    options = BatchOptions(workers=1, formats=(), retries=0, execution_timeout=120)
    with run_in_background(request, settings, options) as done:  # each ledger write waits ~10 s, then gives up
        wait_for(lambda: list(waiter.glob("started-*")), seconds=180, what="the notebook to start")
        proxy.cut()
        (waiter / "release").touch()
    [result] = done
    [job] = result.results
    assert job.status == "failed"
    assert job.error is not None and "OperationalError" in job.error
    assert result.portal is not None and "failed" in Path(result.portal).read_text()
    direct.dispose()
