"""The access-scoped data layer every dashboard reads through: one signed-in user, only their stores.

``ScopedWarehouse.for_account(engine, account)`` resolves the account's stores (listed stores, stores of listed
regions, or all) against the warehouse's stores table once, when the session starts. Every loader method checks the
store codes it is given against that set before any query runs, and raises ``AccessDeniedError`` for any other code
(also for codes that do not exist, so the error does not reveal which stores exist). Widgets only ever offer the
allowed stores, but this check is the guarantee: a hand-edited URL parameter, a forged widget message or a bug in a
callback still cannot load another store's rows.

Selections name what a view shows: ``store:S01``, ``region:North`` (the user's stores in that region) or ``all``
(all the user's stores), as ``Selection`` objects with the store codes they cover.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from report_lib.dashboards.users import Account
from report_lib.errors import AccessDeniedError, ConfigError
from report_lib.kpis import compute_kpis, kpis_from_totals
from report_lib.periods import Period
from report_lib.warehouse.loaders.baskets import load_basket_items, load_products
from report_lib.warehouse.loaders.customers import load_customer_rfm
from report_lib.warehouse.loaders.daily import load_daily_metrics, load_stores
from report_lib.warehouse.loaders.inventory import load_sales_velocity, load_stock
from report_lib.warehouse.loaders.kpis import load_category_comparison, load_comparison_totals
from report_lib.warehouse.loaders.products import load_product_sales

log = logging.getLogger(__name__)

ALL = "all"
STORE_PREFIX = "store:"
REGION_PREFIX = "region:"


@dataclass(frozen=True)
class Selection:
    """What a view shows: one store, a region's stores or all of the user's stores (``key`` as in pickers)."""

    key: str
    label: str
    codes: tuple[str, ...]
    currency: str

    @property
    def is_store(self) -> bool:
        return self.key.startswith(STORE_PREFIX)

    @property
    def store(self) -> str:
        """The store code of a one-store selection."""
        if not self.is_store:
            raise ConfigError(f"{self.label} covers several stores; this view shows one store at a time. Pick a store.")
        return self.codes[0]


class ScopedWarehouse:
    """The warehouse as one user may see it: the loaders of ``report_lib.warehouse.loaders``, store-checked."""

    def __init__(self, engine: Engine, *, user: str, stores: pd.DataFrame) -> None:
        self._engine = engine
        self.user = user
        self._stores = stores.sort_values("code", ignore_index=True)
        self._codes = frozenset(self._stores["code"].astype(str))

    @classmethod
    def for_account(cls, engine: Engine, account: Account) -> ScopedWarehouse:
        """The scope of ``account``: its stores as they are in the warehouse now."""
        every = load_stores(engine)
        allowed = account.allowed_stores(dict(zip(every["code"], every["region"], strict=True)))
        log.info("dashboard session for %s: %d of %d stores", account.username, len(allowed), len(every))
        return cls(engine, user=account.username, stores=every[every["code"].isin(allowed)])

    @property
    def codes(self) -> tuple[str, ...]:
        """The store codes this user may see, sorted."""
        return tuple(sorted(self._codes))

    def stores(self) -> pd.DataFrame:
        """The allowed stores' rows of the stores table (code, name, region, currency, ...)."""
        return self._stores.copy()

    def require(self, codes: str | Iterable[str]) -> list[str]:
        """The codes, after checking each is one of the user's stores.

        Raises:
            AccessDeniedError: a code is not one of the user's stores (whether or not it exists).
        """
        wanted = [codes] if isinstance(codes, str) else list(dict.fromkeys(codes))
        refused = [code for code in wanted if code not in self._codes]
        if refused or not wanted:
            raise AccessDeniedError(
                f"You do not have access to {'that store' if len(refused) <= 1 else 'those stores'}. "
                "Dashboards show only the stores of your account; ask the dashboard administrator to add a "
                "store to your account in parameters/users.yaml.",
                user=self.user,
                stores=refused,
            )
        return wanted

    def selections(self, *, regions: bool = True) -> list[Selection]:
        """Every selection the user may pick: all their stores and their regions (when several), then each store."""
        options: list[Selection] = []
        if regions and len(self._codes) > 1:
            options.append(self.select(ALL))
            for region in sorted(set(self._stores["region"])):
                options.append(self.select(REGION_PREFIX + str(region)))
        options.extend(self.select(STORE_PREFIX + code) for code in self.codes)
        return options

    def select(self, key: str) -> Selection:
        """The Selection of a picker key ('store:S01', 'region:North', 'all'); only within the user's stores."""
        rows = self._stores
        if key == ALL:
            label, chosen = "All my stores", rows
        elif key.startswith(REGION_PREFIX):
            region = key.removeprefix(REGION_PREFIX)
            chosen = rows[rows["region"] == region]
            label = f"Region {region}"
        elif key.startswith(STORE_PREFIX):
            code = self.require(key.removeprefix(STORE_PREFIX))[0]
            chosen = rows[rows["code"] == code]
            label = f"{code} · {chosen['name'].iloc[0]}"
        else:
            chosen, label = rows.iloc[0:0], key
        if chosen.empty:
            self.require([key])  # refuses: nothing of the user's matches the key
        if len(chosen) > 1:
            label = f"{label} ({len(chosen)} stores)"
        currencies = sorted(set(chosen["currency"]))
        return Selection(key, label, tuple(sorted(chosen["code"])), currencies[0] if len(currencies) == 1 else "")

    # --- loaders: each checks its stores first ---------------------------------------------------------------

    def daily(self, codes: Sequence[str], *, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """daily_metrics rows of the stores (``load_daily_metrics``)."""
        return load_daily_metrics(self._engine, stores=self.require(codes), start=start, end=end)

    def kpis(self, selection: Selection, period: Period) -> pd.DataFrame:
        """The KPI table of the period against its comparisons; exact customer counts for one store (as in the
        emailed reports), daily sums flagged approximate for several stores."""
        codes = self.require(selection.codes)
        if len(codes) == 1:
            return kpis_from_totals(load_comparison_totals(self._engine, store=codes[0], period=period))
        start, end = period.load_range()
        return compute_kpis(self.daily(codes, start=start, end=end), period)

    def category_comparison(self, store: str, period: Period) -> pd.DataFrame:
        return load_category_comparison(self._engine, store=self.require(store)[0], period=period)

    def customer_rfm(self, codes: Sequence[str], *, as_of: dt.date, start: dt.date | None) -> pd.DataFrame:
        return load_customer_rfm(self._engine, stores=self.require(codes), as_of=as_of, start=start)

    def basket_items(self, codes: Sequence[str], *, start: dt.date, end: dt.date) -> pd.DataFrame:
        return load_basket_items(self._engine, stores=self.require(codes), start=start, end=end)

    def product_sales(self, codes: Sequence[str], *, start: dt.date, end: dt.date) -> pd.DataFrame:
        return load_product_sales(self._engine, stores=self.require(codes), start=start, end=end)

    def stock(self, store: str) -> pd.DataFrame:
        return load_stock(self._engine, store=self.require(store)[0])

    def sales_velocity(self, store: str, *, end: dt.date, days: int = 28) -> pd.DataFrame:
        return load_sales_velocity(self._engine, store=self.require(store)[0], end=end, days=days)

    def products(self) -> pd.DataFrame:
        """The product catalogue (sku, name, category): shared by every store, no store data."""
        return load_products(self._engine)
