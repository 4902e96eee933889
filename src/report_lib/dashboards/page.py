"""What a dashboard notebook calls: ``show_dashboard("overview")`` returns the page's widget, never raises.

It opens the signed-in user's session, builds the named dashboard and puts the account line above it. Anything
that stops the dashboard from being built (no signed-in user, no stores, the warehouse unreachable) becomes one
sentence on the page; unexpected errors are logged with a reference the sentence quotes. Log records go to the
kernel process's own stderr (the server's console), never into the page.
"""

from __future__ import annotations

import html
import importlib
import logging
import sys
import uuid
from typing import Any

import ipywidgets as widgets

from report_lib.config import Settings
from report_lib.dashboards import ui
from report_lib.errors import ReportError, ReportNotFoundError
from report_lib.logs import RedactSecrets, secrets_of
from report_lib.render.plotting import skip_slow_optional_imports

log = logging.getLogger(__name__)

DASHBOARDS = {
    "overview": ("report_lib.dashboards.overview", "OverviewDashboard"),
    "forecast": ("report_lib.dashboards.forecast_view", "ForecastDashboard"),
    "anomalies": ("report_lib.dashboards.anomalies_view", "AnomaliesDashboard"),
    "customers": ("report_lib.dashboards.customers_view", "CustomersDashboard"),
    "products": ("report_lib.dashboards.products_view", "ProductsDashboard"),
}


def show_dashboard(name: str) -> widgets.Widget:
    """The widget of dashboard ``name`` for the signed-in user, or a sentence saying why it cannot be shown."""
    _kernel_logging()
    skip_slow_optional_imports()
    try:
        from report_lib.dashboards.session import open_session

        if name not in DASHBOARDS:
            raise ReportNotFoundError("dashboard", name, DASHBOARDS)
        session = open_session()
        module_name, class_name = DASHBOARDS[name]
        dashboard: Any = getattr(importlib.import_module(module_name), class_name)(session)
        account = ui.html_widget(f"Signed in as {html.escape(session.display_name)}", "sd-user")
        return widgets.VBox([account, dashboard.widget])
    except ReportError as exc:
        log.warning("dashboard %s not shown: %s", name, exc)
        return _message(str(exc))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("dashboard %s failed (reference %s)", name, reference)
        return _message(f"This dashboard could not be opened (reference {reference}). Reload the page to try again.")


def _message(text: str) -> widgets.HTML:
    return ui.html_widget(f'<p class="sd-error" role="alert">{html.escape(text)}</p>')


class _KernelLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records of a dashboard kernel, to the process's own stderr."""


def _kernel_logging() -> None:
    logger = logging.getLogger("report_lib")
    if any(isinstance(handler, _KernelLogHandler) for handler in logger.handlers):
        return
    handler = _KernelLogHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [kernel] %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        settings = Settings.from_env()
    except ReportError:  # open_session reports the bad setting on the page
        return
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    logger.setLevel(getattr(logging, settings.log_level))
