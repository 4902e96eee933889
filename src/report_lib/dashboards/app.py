"""The Voila application of ``runner.py serve``: Voila 0.5 with three changes (imported only when serving).

1. Our sign-in pages at ``<base_url>login`` and ``logout``; Voila's page-unload kernel shutdown endpoint accepts
   only the caller's own kernels (``OwnKernelShutdownHandler``).
2. ``/voila/dashboard-assets/widgetbundle.js`` serves plotly's FigureWidget front-end once, cacheable: each plotly
   ``FigureWidget`` would otherwise send the same 5 MB bundle through the kernel websocket (measured here: ~4 s per
   chart), see ``report_lib.dashboards.figures``.
3. ``listen`` binds exactly the configured port (no silent fall-back to a neighbouring one) and serves HTTPS when
   given a certificate and key.
4. The kernel websocket survives clients of the older (non-"v1") protocol: Voila 0.5.13 reads the header of every
   binary message it sends as if it were v1-framed; a legacy-framed message (any widget state with binary buffers)
   makes it loop over billions of "offsets" and freezes the whole server (found by this project's tests). Legacy
   binary messages are parsed as what they are.
5. Error pages (403, 404, 500) come from our template: jupyter-server's own need a /static/ route that Voila
   rightly does not have (GHSA-2q59-h24c-w6fg), so rendering them failed.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import plotly
import tornado.ioloop
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Unicode
from voila.app import Voila
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from report_lib.dashboards.auth import DashboardLoginHandler, DashboardLogoutHandler, OwnKernelShutdownHandler

log = logging.getLogger(__name__)

PLOTLY_ASSETS = Path(plotly.__file__).resolve().parent / "package_data"
ASSET_ROUTE = r"/voila/dashboard-assets/(widgetbundle\.js)"
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
_deserialize: Callable[[bytes], dict[str, Any]] = deserialize_binary_message  # untyped upstream


class WidgetBundleHandler(web.StaticFileHandler):
    """plotly's widget bundle; requests with ?v=<version> are cached by the browser for a year."""


class KernelWebsocketHandler(VoilaKernelWebsocketHandler):  # type: ignore[misc]  # voila is untyped
    """Voila's kernel websocket (``execute_input`` echoes dropped) that reads legacy binary frames correctly."""

    def write_message(self, message: bytes | dict[str, Any], binary: bool = False) -> Any:
        if isinstance(message, bytes) and self.selected_subprotocol != V1_PROTOCOL:
            try:
                header = _deserialize(message).get("header") or {}
            except (ValueError, IndexError, UnicodeDecodeError):
                header = {}
            if header.get("msg_type") == "execute_input":
                return None
            return web_socket_write(self, message, binary)
        return super().write_message(message, binary)


def web_socket_write(handler: Any, message: Any, binary: bool) -> Any:
    """The websocket's own write, past Voila's header parsing."""
    return super(VoilaKernelWebsocketHandler, handler).write_message(message, binary)


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
            replacement = {
                VoilaShutdownKernelHandler: OwnKernelShutdownHandler,
                VoilaKernelWebsocketHandler: KernelWebsocketHandler,
            }.get(entry[1])
            handlers.append((entry[0], replacement, *entry[2:]) if replacement else entry)
        return handlers

    def init_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = super().init_settings()
        ours = [path for path in self.template_paths if Path(path).name == self.voila_configuration.template]
        server_env = settings["jinja2_env"]
        server_env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(ours), server_env.loader])
        return settings

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
