"""The ``warm`` papermill engine: one kernel per worker process, the heavy imports done once, reused notebook after
notebook with its state reset in between (see ``report_lib.run.kernel_state`` for what is reset).

papermill's default engine starts a kernel per notebook (~0.7 s) and the notebook imports pandas, plotly,
statsmodels and report_lib inside it again (~1.7-2.8 s). This engine pays both once per worker: the first notebook
of a worker starts the kernel and imports ``WARM_IMPORTS``; later notebooks only send two small silent requests
(prepare, reset). Everything papermill writes around the execution (parameters cell, metadata, timings, the error
banner, ``PapermillExecutionError``) comes from papermill itself, as with the default engine: this class only
replaces where the cells run. The execution count restarts at 1 for every notebook.

The kernel is replaced (recycled) after ``max_notebooks`` notebooks, after any failure (a cell error, a timeout,
a dead kernel, a reset that did not complete or left threads running) and when its resident memory after a reset
is above ``max_memory_mb``. State is per process and created lazily, so it works in a ProcessPoolExecutor worker,
a Celery prefork child (a kernel inherited through fork is never used) or a plain script; threads of one process
take turns on the kernel. Select it with ``papermill.execute_notebook(..., engine_name="warm")``; it is registered
through the ``papermill.engine`` entry point in pyproject.toml.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
import logging
import multiprocessing.util
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

# papermill imports its entry points (this module) while it is first imported. When this module is imported before
# papermill, papermill finds it half-initialised: this placeholder answers, and the end of the module registers the
# real engine in its place.
globals().setdefault("WarmKernelEngine", None)

from papermill.clientwrap import PapermillNotebookClient  # noqa: E402
from papermill.engines import Engine, NotebookExecutionManager, papermill_engines  # noqa: E402
from papermill.log import logger as papermill_logger  # noqa: E402
from papermill.utils import merge_kwargs, remove_args  # noqa: E402

from report_lib.errors import ReportError  # noqa: E402

log = logging.getLogger(__name__)

ENGINE_NAME = "warm"
STATE_MODULE = "report_lib.run.kernel_state"
# What the report notebooks import, directly or through report_lib (statsmodels and sklearn load lazily there).
WARM_IMPORTS = (
    "numpy", "pandas", "scipy.stats", "plotly.graph_objects", "plotly.io", "IPython.display", "threadpoolctl",
    "statsmodels.tsa.seasonal", "sklearn.cluster", "sklearn.metrics", "sklearn.preprocessing",
    "report_lib.context", "report_lib.charts", "report_lib.display", "report_lib.record", "report_lib.render.plotting",
    "report_lib.trends", "report_lib.forecast", "report_lib.segments", "report_lib.recommend", "report_lib.anomalies",
    "report_lib.margins", "report_lib.inventory", "report_lib.warehouse.loaders.baskets",
    "report_lib.warehouse.loaders.customers", "report_lib.warehouse.loaders.inventory",
    "report_lib.warehouse.loaders.products",
)  # fmt: skip
MAX_NOTEBOOKS_ENV = "REPORT_WARM_MAX_NOTEBOOKS"
MAX_MEMORY_ENV = "REPORT_WARM_MAX_MEMORY_MB"
DEFAULT_MAX_NOTEBOOKS = 40
DEFAULT_MAX_MEMORY_MB = 1000.0
REQUEST_TIMEOUT_S = 60.0
WARM_UP_TIMEOUT_S = 300.0  # imports on a busy 2-core machine


class WarmKernelError(ReportError, RuntimeError):
    """The warm kernel could not be started, warmed up or reset."""


@dataclass(frozen=True)
class RecyclePolicy:
    """When a warm kernel is replaced by a new one."""

    max_notebooks: int = DEFAULT_MAX_NOTEBOOKS
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB

    @classmethod
    def resolve(
        cls, *, max_notebooks: int | None, max_memory_mb: float | None, environ: Mapping[str, str] = os.environ
    ) -> RecyclePolicy:
        """Explicit values, else $REPORT_WARM_MAX_NOTEBOOKS / $REPORT_WARM_MAX_MEMORY_MB, else the defaults."""
        try:
            notebooks = max_notebooks or int(environ.get(MAX_NOTEBOOKS_ENV) or DEFAULT_MAX_NOTEBOOKS)
            memory = max_memory_mb or float(environ.get(MAX_MEMORY_ENV) or DEFAULT_MAX_MEMORY_MB)
        except ValueError as exc:
            raise WarmKernelError(
                f"{MAX_NOTEBOOKS_ENV} must be a whole number and {MAX_MEMORY_ENV} a number of megabytes: {exc}. "
                "Unset them to use the defaults."
            ) from exc
        if notebooks < 1 or memory <= 0:
            raise WarmKernelError(
                f"The warm kernel needs max_notebooks >= 1 and max_memory_mb > 0; got {notebooks} and {memory}."
            )
        return cls(notebooks, memory)


class WarmKernel:
    """A started kernel with the heavy imports done, and the client that talks to it."""

    def __init__(self, kernel_name: str, *, startup_timeout: float, preload: Sequence[str] = WARM_IMPORTS) -> None:
        self.kernel_name = kernel_name
        self.preload = tuple(preload)
        self.owner = os.getpid()
        self.notebooks = 0
        self.rss_bytes = 0
        self.dirty: list[str] = []
        started = time.perf_counter()
        self._launch_environ = dict(os.environ)
        self._client = NotebookClient(
            nbformat.v4.new_notebook(),  # type: ignore[no-untyped-call]
            kernel_name=kernel_name,
            startup_timeout=startup_timeout,
        )
        self._client.km = self._client.create_kernel_manager()
        self._sockets = _private_ipc(self._client.km)
        try:
            self._client.start_new_kernel()
            self._client.start_new_kernel_client()
            self.request(f"{_call('warm_up')}({list(self.preload)!r})", timeout=WARM_UP_TIMEOUT_S)
            reply = self.request("None", expressions={"env": f"{_call('environment')}()"})
            self._kernel_environ: dict[str, str] = json.loads(_expression(reply, "env"))
        except BaseException:
            self.shutdown(now=True)
            raise
        log.info("warm kernel %s ready in %.1f s", self.kernel_name, time.perf_counter() - started)

    @property
    def km(self) -> Any:
        return self._client.km

    @property
    def kc(self) -> Any:
        return self._client.kc

    def environ_for_notebook(self) -> dict[str, str]:
        """The environment a kernel started now would have: this process's changes since the launch applied
        to what the kernel had after its warm-up (its own additions, such as JPY_PARENT_PID, kept)."""
        target = dict(self._kernel_environ)
        now = os.environ
        for name in self._launch_environ.keys() | now.keys():
            if self._launch_environ.get(name) != now.get(name):
                if name in now:
                    target[name] = now[name]
                else:
                    target.pop(name, None)
        return target

    def run(self, nb_man: Any, client_options: Mapping[str, Any]) -> Any:
        """Execute ``nb_man``'s notebook in this kernel from the process's working directory; then reset it."""
        self.request(f"{_call('begin_notebook')}({os.getcwd()!r}, {self.environ_for_notebook()!r})")
        client = PapermillNotebookClient(nb_man, km=self.km, **client_options)
        client.kc = self.kc  # an existing client and kernel: nbclient neither starts nor stops them
        self.notebooks += 1
        executed = client.execute()
        if nb_man.nb.metadata.get("papermill", {}).get("exception"):
            self.dirty.append("a cell raised an exception")
            return executed
        try:
            reply = self.request(f"{_call('end_notebook')}()", expressions={"report": f"{_call('report')}()"})
            found = json.loads(_expression(reply, "report"))
        except WarmKernelError as exc:  # the notebook itself succeeded: only this kernel is lost
            log.warning("the warm kernel could not be reset after a notebook; replacing it: %s", exc)
            self.dirty.append("the reset did not complete")
            return executed
        self.rss_bytes = int(found["rss_bytes"])
        self.dirty.extend(found["dirty"])
        return executed

    def request(
        self, code: str, *, expressions: Mapping[str, str] | None = None, timeout: float = REQUEST_TIMEOUT_S
    ) -> Any:
        """Run ``code`` silently (no history, no execution count, no output kept); the reply, or WarmKernelError."""
        msg_id = self.kc.execute(
            code, silent=True, store_history=False, user_expressions=dict(expressions or {}), allow_stdin=False
        )
        reply = run_sync(self._reply)(msg_id, timeout)
        content = reply["content"]
        if content.get("status") != "ok":
            raise WarmKernelError(
                f"The warm kernel failed a {STATE_MODULE} request: {content.get('ename')}: {content.get('evalue')}. "
                "Expected it to prepare or reset the kernel; the kernel is replaced by a new one."
            )
        return reply

    async def _reply(self, msg_id: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = await self.kc.get_shell_msg(timeout=min(remaining, 1.0))
            except queue.Empty as exc:
                if not await self.km.is_alive():
                    raise WarmKernelError(
                        "The warm kernel died while being prepared or reset; a new kernel is started for the next "
                        "notebook."
                    ) from exc
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply
        raise WarmKernelError(
            f"The warm kernel did not answer within {timeout:.0f} s; expected a reply in well under a second. "
            "It is replaced by a new one."
        )

    def is_alive(self) -> bool:
        return bool(run_sync(self.km.is_alive)())

    def shutdown(self, *, now: bool = False) -> None:
        """Stop the kernel (politely unless ``now``) and close the client; never raises."""
        if self._client.km is None:
            return
        self._client.shutdown_kernel = "immediate" if now else "graceful"
        try:
            self._client._cleanup_kernel()
        except Exception as exc:  # a kernel that is already gone, or a closed loop at interpreter exit
            log.debug("warm kernel shutdown: %s", exc)
        shutil.rmtree(self._sockets, ignore_errors=True)


def _private_ipc(km: Any) -> Path:
    """Have ``km`` talk to its kernel over Unix sockets in a new folder only this user can open (mode 0700) rather
    than TCP ports on localhost that any local process can reach (ipykernel warns of that for every kernel). The
    folder is returned for removal once the kernel is shut down."""
    folder = Path(tempfile.mkdtemp(prefix="report-kernel-"))
    km.transport = "ipc"
    km.ip = str(folder / "kernel")
    return folder


class _WorkerKernel:
    """This process's warm kernel, created on first use; threads of the process take turns on it."""

    def __init__(self) -> None:
        self.kernel: WarmKernel | None = None
        self.lock = threading.Lock()
        self.started = 0  # kernels started by this process, for tests and logs

    @contextlib.contextmanager
    def use(
        self, kernel_name: str, *, startup_timeout: float, policy: RecyclePolicy, preload: Sequence[str]
    ) -> Iterator[WarmKernel]:
        with self.lock:
            kernel = self._ready(kernel_name, startup_timeout, tuple(preload))
            try:
                yield kernel
            except BaseException:
                self.discard(reason="the notebook did not complete", now=True)
                raise
            reason = _recycle_reason(kernel, policy)
            if reason:
                self.discard(reason=reason)

    def _ready(self, kernel_name: str, startup_timeout: float, preload: tuple[str, ...]) -> WarmKernel:
        kernel = self.kernel
        if kernel is not None and kernel.owner != os.getpid():
            self.kernel = kernel = None  # inherited through fork: the parent's kernel, never ours to use or stop
        if kernel is not None and (
            (kernel.kernel_name, kernel.preload) != (kernel_name, preload) or not kernel.is_alive()
        ):
            self.discard(reason="another kernel or preload was asked for, or the kernel is gone", now=True)
            kernel = None
        if kernel is None:
            kernel = self.kernel = WarmKernel(kernel_name, startup_timeout=startup_timeout, preload=preload)
            self.started += 1
        return kernel

    def discard(self, *, reason: str, now: bool = False) -> None:
        kernel, self.kernel = self.kernel, None
        if kernel is not None and kernel.owner == os.getpid():
            log.info("recycling the warm kernel after %d notebook(s): %s", kernel.notebooks, reason)
            kernel.shutdown(now=now)


def _recycle_reason(kernel: WarmKernel, policy: RecyclePolicy) -> str | None:
    if kernel.dirty:
        return "; ".join(kernel.dirty)
    if kernel.notebooks >= policy.max_notebooks:
        return f"{kernel.notebooks} notebooks run (max {policy.max_notebooks})"
    if kernel.rss_bytes > policy.max_memory_mb * 1e6:
        return f"{kernel.rss_bytes / 1e6:.0f} MB resident after the reset (max {policy.max_memory_mb:.0f} MB)"
    return None


WORKER = _WorkerKernel()


def shutdown_worker_kernel() -> None:
    """Stop this process's warm kernel, if any (at exit, and for tests)."""
    with WORKER.lock:
        WORKER.discard(reason="shutting down")


atexit.register(shutdown_worker_kernel)
# multiprocessing workers leave through os._exit, which skips atexit; their finalizers still run.
multiprocessing.util.Finalize(None, shutdown_worker_kernel, exitpriority=10)


class _FewerSaves(NotebookExecutionManager):  # type: ignore[misc]  # papermill ships no type hints
    """papermill's execution manager, saving the output notebook at most every ``autosave_cell_every`` seconds while
    cells run, and always at the end (also after a dead kernel or a timeout: papermill completes it in a finally).

    The default manager writes the whole notebook before and after every cell; a report notebook carries plotly.js
    (4.8 MB) in its outputs, so those ~25 writes cost ~0.8 s of a worker's time per notebook, more than most reports
    take to compute. The final file is the same.
    """

    closing = False

    def save(self, **kwargs: Any) -> None:
        if self.closing or (self.now() - self.last_save_time).total_seconds() >= self.autosave_cell_every:
            super().save(**kwargs)

    def notebook_complete(self, **kwargs: Any) -> None:
        self.closing = True
        super().notebook_complete(**kwargs)


class WarmKernelEngine(Engine):  # type: ignore[misc]  # papermill ships no type hints
    """papermill's engine interface over this process's warm kernel."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        """papermill's ``Engine.execute_notebook`` with the manager that saves less often (``_FewerSaves``)."""
        nb_man = _FewerSaves(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        max_notebooks: int | None = None,
        max_memory_mb: float | None = None,
        preload: Sequence[str] = WARM_IMPORTS,
        **kwargs: Any,
    ) -> Any:
        """Execute the managed notebook in the warm kernel (same client options as papermill's default engine).

        ``max_notebooks`` and ``max_memory_mb`` override the recycling policy; ``preload`` the modules a new kernel
        imports before its first notebook (a kernel warmed with other modules is replaced).
        """
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        client_options = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=papermill_logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        policy = RecyclePolicy.resolve(max_notebooks=max_notebooks, max_memory_mb=max_memory_mb)
        with WORKER.use(kernel_name, startup_timeout=start_timeout, policy=policy, preload=preload) as kernel:
            return kernel.run(nb_man, client_options)


papermill_engines.register(ENGINE_NAME, WarmKernelEngine)  # the same registration as the entry point's


def _call(function: str) -> str:
    """An expression calling ``function`` of the kernel-side module without binding a name in the user namespace."""
    return f"__import__({STATE_MODULE!r}, fromlist=[{function!r}]).{function}"


def _expression(reply: Any, name: str) -> str:
    """A string-valued user expression of an execute reply."""
    result = reply["content"].get("user_expressions", {}).get(name, {})
    if result.get("status") != "ok":
        raise WarmKernelError(
            f"The warm kernel could not evaluate {name!r}: {result.get('ename')}: {result.get('evalue')}. "
            f"Expected {STATE_MODULE} to be importable in the kernel; check that report_lib is installed there."
        )
    value = ast.literal_eval(result["data"]["text/plain"])
    if not isinstance(value, str):
        raise WarmKernelError(f"The warm kernel returned {type(value).__name__} for {name!r}; expected a string.")
    return value
