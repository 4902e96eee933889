"""One dashboard session (one page, one kernel): the signed-in user's data scope, presets from the link, a cache.

``open_session()`` runs in the page's kernel. The user name comes from ``REPORT_DASHBOARD_USER``, which the
dashboards server sets when it starts the kernel for an authenticated request (``report_lib.dashboards.kernels``);
without it (a notebook opened elsewhere) the session is refused. The account's stores come from
``parameters/users.yaml`` and the warehouse, read again here, so the kernel trusts nothing but the user name.

Deep links: Voila passes the page's query string to the kernel (``QUERY_STRING``). ``?store=S01&period=2024-W10``
presets the pickers; also ``region=North``, ``metric=orders``, ``comparison=last_year``. A store or region outside
the account is not shown: the session falls back to the account's first store and says that the link asked for
something this account cannot see (without naming it). An invalid period falls back to the default with a note.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlencode

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from report_lib.config import Settings
from report_lib.dashboards import USER_ENV
from report_lib.dashboards.access import ALL, REGION_PREFIX, STORE_PREFIX, ScopedWarehouse
from report_lib.dashboards.cache import SessionCache
from report_lib.dashboards.users import USERS_FILE, Account, load_users
from report_lib.errors import AccessDeniedError, ConfigError, InsufficientDataError, WarehouseError
from report_lib.params import ParameterFiles, Thresholds
from report_lib.periods import Period, parse_period
from report_lib.warehouse.engine import create_warehouse_engine

log = logging.getLogger(__name__)

T = TypeVar("T")
METRICS = ("revenue", "orders", "units", "customers", "margin", "returns")
COMPARISONS = ("previous", "last_year")
REFUSED_LINK = "The link asked for a store this account cannot see; showing one of your stores instead."


@dataclass(frozen=True)
class DeepLink:
    """What the page's query string asked for, already checked against the user's rights."""

    selection: str | None = None
    period: str | None = None
    metric: str | None = None
    comparison: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class DashboardSession:
    """The signed-in user's view of the warehouse for one page, with its presets and its cache."""

    user: str
    display_name: str
    warehouse: ScopedWarehouse
    parameters: ParameterFiles
    last_day: dt.date
    link: DeepLink = DeepLink()
    cache: SessionCache = field(default_factory=SessionCache)

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        return self.cache.get_or_compute(key, compute)

    def thresholds(self, store: str | None = None) -> Thresholds:
        """defaults.yaml's thresholds with the store's overrides from stores.yaml."""
        base = self.parameters.defaults.thresholds
        settings = self.parameters.stores.get(store) if store else None
        return settings.thresholds.over(base) if settings else base

    def period(self, text: str) -> Period:
        """A period string (as ``runner.py run --period``) counted back from the last day with data."""
        return parse_period(text, today=self.last_day + dt.timedelta(days=1))

    def daily(self, codes: tuple[str, ...]) -> pd.DataFrame:
        """The stores' daily metrics up to the last day with data (cached for the session)."""
        return self.cached(("daily", codes), lambda: self.warehouse.daily(codes, end=self.last_day))


def open_session(environ: Mapping[str, str] | None = None) -> DashboardSession:
    """The session of the signed-in user of this kernel.

    Raises:
        AccessDeniedError: no signed-in user, an unknown user, or an account with no store in the warehouse.
        InsufficientDataError: the account's stores have no data yet.
    """
    env = os.environ if environ is None else environ
    user = env.get(USER_ENV, "").strip()
    if not user:
        raise AccessDeniedError(
            "This dashboard needs a signed-in user; open it through the dashboards server (runner.py serve).",
            user="",
        )
    settings = Settings.from_env(env)
    account = load_users(settings.parameters_dir / USERS_FILE).get(user)
    if account is None:
        raise AccessDeniedError(f"The account {user!r} no longer exists; sign in again.", user=user)
    warehouse = _scoped_warehouse(settings, account)
    if not warehouse.codes:
        raise AccessDeniedError(
            "Your account has no stores in the warehouse yet; ask the dashboard administrator.", user=user
        )
    everything = warehouse.daily(warehouse.codes)
    session = DashboardSession(
        user=user,
        display_name=account.display_name,
        warehouse=warehouse,
        parameters=ParameterFiles.load(settings.parameters_dir),
        last_day=_last_day(everything),
    )
    session.cached(("daily", warehouse.codes), lambda: everything)
    session.link = parse_link(env.get("QUERY_STRING", ""), session)
    return session


WAREHOUSE_UNREADABLE = (
    "The warehouse cannot be read yet (no data loaded, or the database is down). Ask the dashboard administrator "
    "to run `python runner.py demo` or `python runner.py import`, then reload this page."
)


def _scoped_warehouse(settings: Settings, account: Account) -> ScopedWarehouse:
    """The account's scope; a missing SQLite file is not created, an unreadable warehouse is one sentence."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise WarehouseError(WAREHOUSE_UNREADABLE)
    try:
        return ScopedWarehouse.for_account(create_warehouse_engine(url), account)
    except SQLAlchemyError as exc:
        log.warning("dashboard warehouse unreadable: %s", type(exc).__name__)
        raise WarehouseError(WAREHOUSE_UNREADABLE) from exc


def _last_day(daily: pd.DataFrame) -> dt.date:
    if daily.empty:
        raise InsufficientDataError(
            "Your stores have no daily figures yet. Load data (runner.py import or demo) and run runner.py refresh."
        )
    return pd.Timestamp(daily["day"].max()).date()


def parse_link(query: str, session: DashboardSession) -> DeepLink:
    """The presets of a query string, within the user's rights (see the module docstring)."""
    values = {key: items[-1] for key, items in parse_qs(query, keep_blank_values=False).items()}
    notes: list[str] = []
    selection = None
    wanted = _selection_key(values)
    if wanted is not None:
        try:
            selection = session.warehouse.select(wanted).key
        except AccessDeniedError:
            log.warning("deep link of %s asked for %r outside the account", session.user, wanted)
            notes.append(REFUSED_LINK)
    period = values.get("period")
    if period is not None:
        try:
            session.period(period)
        except ConfigError:
            notes.append("The link's period is not one this dashboard understands; showing the default period.")
            period = None
    metric = values.get("metric") if values.get("metric") in METRICS else None
    comparison = values.get("comparison") if values.get("comparison") in COMPARISONS else None
    return DeepLink(selection, period, metric, comparison, tuple(notes))


def _selection_key(values: Mapping[str, str]) -> str | None:
    if "store" in values:
        return STORE_PREFIX + values["store"].strip()
    if "region" in values:
        return REGION_PREFIX + values["region"].strip()
    if values.get("stores") == ALL:
        return ALL
    return None


def dashboard_link(base_url: str, dashboard: str, *, store: str | None = None, period: str | None = None) -> str:
    """The URL of a dashboard preset to a store and period, for "explore this" links in emailed reports.

    ``base_url`` is where the dashboards are served, e.g. ``https://dashboards.example.com/``.
    """
    query = urlencode({key: value for key, value in (("store", store), ("period", period)) if value})
    url = f"{base_url.rstrip('/')}/voila/render/{dashboard}.ipynb"
    return f"{url}?{query}" if query else url
