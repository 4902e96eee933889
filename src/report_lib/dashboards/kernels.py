"""Dashboard kernels: one per open page, owned by the signed-in user who opened it, bounded in time and memory.

- **Owner**: Voila calls our prelaunch hook (``bind_request_user``) with the authenticated request just before it
  starts the page's kernel, in the same asyncio task; the hook records the user name in a context variable and
  ``DashboardKernelManager.start_kernel`` reads it there. The kernel gets the name in its environment
  (``REPORT_DASHBOARD_USER``), which the browser cannot influence, and the manager remembers the owner so that
  ``authorization.KernelOwnerAuthorizer`` lets only that user reach the kernel's websocket or API.
- **Closed pages**: a kernel with no browser connected and no activity for ``disconnected_grace`` seconds is shut
  down (a closed tab's 150-200 MB kernel goes within about a minute). A page left open but idle keeps its kernel
  until jupyter-server's culler (``cull_idle_timeout``, ``cull_connected``) removes it.
- **Memory bound**: every ``check_interval`` seconds the resident memory of each kernel process is measured; a
  kernel above ``memory_limit_mb`` is shut down and the event logged (its page then shows that the kernel is gone
  and a reload starts afresh). A dashboard kernel uses about 155 MB (measured: see the README's benchmark table).
- **Environment**: kernels get the server's resolved settings as absolute values (database URL, parameters folder),
  one BLAS/OpenMP thread each (two kernels on two cores must not oversubscribe), and nothing from the request except
  what Voila itself sets (URL, query string).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
from typing import Any

import psutil
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager as _AsyncMappingKernelManager
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Dict, Integer

from report_lib.dashboards import USER_ENV

log = logging.getLogger(__name__)

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_REQUEST_USER: contextvars.ContextVar[str] = contextvars.ContextVar("dashboard_request_user")


def bind_request_user(req_handler: Any, notebook: Any = None, cwd: Any = None) -> None:
    """Voila's prelaunch hook: remember who asked for the page, for the kernel about to start in this task.

    Voila serves the page only to authenticated users (``web.authenticated``); a missing user here is refused
    anyway. Returns None: the notebook is left unchanged.
    """
    user = getattr(req_handler, "current_user", None)
    username = getattr(user, "username", None)
    if not username:
        raise web.HTTPError(403, "Sign in to open dashboards.")
    _REQUEST_USER.set(str(username))


_KernelManagerBase: Any = _AsyncMappingKernelManager  # partly typed upstream: its overloads do not fit a subclass


class DashboardKernelManager(_KernelManagerBase):  # type: ignore[misc]  # an untyped jupyter-server base
    """Kernels that know their owner, get the dashboard environment, and are shut down when abandoned or too big."""

    kernel_environment = Dict(
        {}, config=True, help="Extra environment variables for every dashboard kernel (absolute settings)."
    )
    memory_limit_mb = Integer(1024, config=True, help="Resident memory above which a kernel is shut down (MB).")
    disconnected_grace = Integer(60, config=True, help="Seconds a kernel may live with no page connected.")
    check_interval = Integer(10, config=True, help="Seconds between memory and abandonment checks.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owners: dict[str, str] = {}
        self._watchdog: PeriodicCallback | None = None

    def owner_of(self, kernel_id: str) -> str | None:
        """The user name whose page started the kernel (None for unknown or finished kernels)."""
        return self._owners.get(kernel_id)

    def kernels_of(self, username: str) -> list[str]:
        return [kernel_id for kernel_id, owner in self._owners.items() if owner == username]

    async def start_kernel(self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any) -> str:
        owner = _REQUEST_USER.get(None)
        if owner is None:
            raise web.HTTPError(403, "Dashboard kernels start only for a signed-in page request.")
        env = dict(kwargs.pop("env", None) or os.environ)
        env.update(SINGLE_THREAD_ENV)
        env.update({str(key): str(value) for key, value in self.kernel_environment.items()})
        env[USER_ENV] = owner
        started: str = await super().start_kernel(kernel_id=kernel_id, path=path, env=env, **kwargs)
        self._owners[started] = owner
        self._start_watchdog()
        log.info("dashboard kernel %s started for %s", started, owner)
        return started

    async def shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:
        try:
            await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        finally:
            if not restart:
                self._owners.pop(kernel_id, None)

    def _start_watchdog(self) -> None:
        if self._watchdog is None and self.check_interval > 0:
            self._watchdog = PeriodicCallback(self.check_kernels, 1000 * self.check_interval)
            self._watchdog.start()

    async def check_kernels(self) -> None:
        """Shut down kernels above the memory bound and kernels no page has been connected to for a while."""
        for kernel_id in list(self._owners):
            if kernel_id not in self:
                self._owners.pop(kernel_id, None)
                continue
            reason = self._reason_to_stop(kernel_id)
            if reason:
                log.warning("shutting down dashboard kernel %s of %s: %s", kernel_id, self._owners[kernel_id], reason)
                try:
                    await self.shutdown_kernel(kernel_id, now=True)
                except Exception:  # a kernel that died meanwhile: the next check forgets it
                    log.exception("could not shut down kernel %s", kernel_id)

    def _reason_to_stop(self, kernel_id: str) -> str | None:
        rss_mb = self.kernel_memory_mb(kernel_id)
        if rss_mb is not None and rss_mb > self.memory_limit_mb:
            return f"{rss_mb:.0f} MB resident, above the {self.memory_limit_mb} MB bound"
        kernel = self.get_kernel(kernel_id)
        last = getattr(kernel, "last_activity", None)
        connections = self._kernel_connections.get(kernel_id, 0)
        if connections == 0 and last is not None:
            idle = (dt.datetime.now(dt.UTC) - last).total_seconds()
            if idle > self.disconnected_grace:
                return f"no page connected and idle for {idle:.0f} s"
        return None

    def kernel_memory_mb(self, kernel_id: str) -> float | None:
        """Resident memory of the kernel process in MB (None when it cannot be measured)."""
        pid = getattr(self.get_kernel(kernel_id).provisioner, "pid", None)
        if pid is None:
            return None
        try:
            return float(psutil.Process(pid).memory_info().rss) / 2**20
        except psutil.Error:
            return None
