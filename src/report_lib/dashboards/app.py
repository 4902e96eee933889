"""The Voila application of ``runner.py serve``: Voila 0.5 with three changes (imported only when serving).

1. Our sign-in pages at ``<base_url>login`` and ``logout``; Voila's page-unload kernel shutdown endpoint accepts
   only the caller's own kernels (``OwnKernelShutdownHandler``).
2. ``/voila/dashboard-assets/widgetbundle.js`` serves plotly's FigureWidget front-end once, cacheable: each plotly
   ``FigureWidget`` would otherwise send the same 5 MB bundle through the kernel websocket (measured here: ~4 s per
   chart), see ``report_lib.dashboards.figures``.
3. ``listen`` binds exactly the configured port (no silent fall-back to a neighbouring one) and serves HTTPS when
   given a certificate and key.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import plotly
import tornado.ioloop
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Unicode
from voila.app import Voila
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler

from report_lib.dashboards.auth import DashboardLoginHandler, DashboardLogoutHandler, OwnKernelShutdownHandler

log = logging.getLogger(__name__)

PLOTLY_ASSETS = Path(plotly.__file__).resolve().parent / "package_data"
ASSET_ROUTE = r"/voila/dashboard-assets/(widgetbundle\.js)"


class WidgetBundleHandler(web.StaticFileHandler):
    """plotly's widget bundle; requests with ?v=<version> are cached by the browser for a year."""


class DashboardVoila(Voila):  # type: ignore[misc]  # voila is untyped
    certfile = Unicode("", config=True, help="PEM certificate for HTTPS")
    keyfile = Unicode("", config=True, help="PEM private key for HTTPS")

    def init_handlers(self) -> list[Any]:
        handlers: list[Any] = [
            (url_path_join(self.server_url, ASSET_ROUTE), WidgetBundleHandler, {"path": str(PLOTLY_ASSETS)}),
            (url_path_join(self.server_url, "/login"), DashboardLoginHandler),
            (url_path_join(self.server_url, "/logout"), DashboardLogoutHandler),
        ]
        for entry in super().init_handlers():
            if entry[0] in {"/login", "/logout"}:  # Voila adds the identity provider's, unprefixed: ours above
                continue
            if entry[1] is VoilaShutdownKernelHandler:
                entry = (entry[0], OwnKernelShutdownHandler, *entry[2:])
            handlers.append(entry)
        return handlers

    def listen(self) -> None:
        ssl_options = {"certfile": self.certfile, "keyfile": self.keyfile} if self.certfile else None
        try:
            self.app.listen(self.port, self.ip, ssl_options=ssl_options)
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            self.log.critical("Port %d on %s %s; choose another with --port.", self.port, self.ip, reason)
            self.exit(1)
        scheme = "https" if self.certfile else "http"
        self.log.info("Dashboards at %s://%s:%d%s", scheme, self.ip, self.port, self.base_url)
        self.ioloop = tornado.ioloop.IOLoop.current()
        try:
            self.ioloop.start()
        except KeyboardInterrupt:
            self.log.info("Stopping...")
        finally:
            self.stop()
