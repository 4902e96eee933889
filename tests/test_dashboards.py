"""Dashboards without a browser: accounts, the access-scoped data layer (SQLite and PostgreSQL), sessions and deep
links, the cache, pickers, widget callbacks with forged values, and the server's configuration and authorizer."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from report_lib.charts import plot_forecast
from report_lib.config import Settings
from report_lib.dashboards import USER_ENV
from report_lib.dashboards.access import ScopedWarehouse
from report_lib.dashboards.auth import KernelOwnerAuthorizer
from report_lib.dashboards.cache import SessionCache
from report_lib.dashboards.customers_view import nice_edges, value_distribution
from report_lib.dashboards.forecast_view import hide_band
from report_lib.dashboards.pickers import describe_period, period_options
from report_lib.dashboards.server import ServeOptions, build_config, check_accounts, check_warehouse
from report_lib.dashboards.session import REFUSED_LINK, dashboard_link, open_session, parse_link
from report_lib.dashboards.ui import StatusLine, kpi_tiles_html
from report_lib.dashboards.users import Account, hash_password, load_users, verify_password
from report_lib.errors import AccessDeniedError, ConfigError, InsufficientDataError, WarehouseError
from report_lib.kpis import kpis_from_totals
from report_lib.periods import Period
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.schema import daily_metrics, stores

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # test hashes: fast, same format
FIRST_DAY = dt.date(2024, 1, 1)
DAYS = 100  # 2024-01-01 .. 2024-04-09: enough history for a 7-day forecast with its backtest
LAST_DAY = FIRST_DAY + dt.timedelta(days=DAYS - 1)
STORES = [("S1", "Alpha", "North", 100.0), ("S2", "Beta", "North", 200.0), ("S3", "Gamma", "South", 1000.0)]


def write_users(folder: Path, users: dict[str, dict[str, object]]) -> Path:
    path = folder / "users.yaml"
    entries = {name: {"password": CHEAP.hash(f"{name}-password"), **entry} for name, entry in users.items()}
    path.write_text(json.dumps({"users": entries}), encoding="utf-8")  # JSON is YAML
    return path


def fill_tiny_warehouse(engine: Engine) -> None:
    """Three stores; each day store revenue = its base, orders = base / 10, one row per day, no order lines."""
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": c, "name": n, "region": r, "currency": "USD"} for c, n, r, _ in STORES])
        rows = [
            {"store_code": code, "day": FIRST_DAY + dt.timedelta(days=i), "grain": "day", "revenue": base,
             "orders": int(base / 10), "units": int(base / 5), "customers": int(base / 20), "cost": base / 2,
             "margin": base / 2, "returns": 0.0, "return_units": 0, "source": "import"}
            for code, _, _, base in STORES
            for i in range(DAYS)
        ]  # fmt: skip
        conn.execute(daily_metrics.insert(), rows)


@pytest.fixture
def tiny(warehouse: Engine) -> Engine:
    fill_tiny_warehouse(warehouse)
    return warehouse


@pytest.fixture
def tiny_sqlite(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    engine = create_warehouse_engine(url)
    ensure_schema(engine)
    fill_tiny_warehouse(engine)
    engine.dispose()
    yield url


def session_env(tmp_path: Path, url: str, user: str, query: str = "") -> dict[str, str]:
    write_users(tmp_path, {"alice": {"stores": ["S1"]}, "north": {"regions": ["North"]}, "boss": {"stores": "all"}})
    return {USER_ENV: user, "REPORT_DATABASE_URL": url, "REPORT_PARAMETERS_DIR": str(tmp_path), "QUERY_STRING": query}


# --- accounts -----------------------------------------------------------------------------------------------------


def test_accounts_are_read_with_their_stores(tmp_path: Path) -> None:
    path = write_users(
        tmp_path,
        {"alice": {"name": "Alice", "stores": ["S1"]}, "north": {"regions": "North"}, "boss": {"stores": "all"}},
    )
    directory = load_users(path)
    regions = {"S1": "North", "S2": "North", "S3": "South"}
    assert directory.accounts["alice"].display_name == "Alice"
    assert directory.accounts["alice"].allowed_stores(regions) == {"S1"}
    assert directory.accounts["north"].allowed_stores(regions) == {"S1", "S2"}
    assert directory.accounts["boss"].allowed_stores(regions) == {"S1", "S2", "S3"}
    assert directory.authenticate("alice", "alice-password") == directory.accounts["alice"]
    assert directory.authenticate("alice", "north-password") is None
    assert directory.authenticate("nobody", "alice-password") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"password": "secret123", "stores": ["S1"]}, "must be an argon2 hash"),
        ({"password": CHEAP.hash("x")}, "grants no stores"),
        ({"password": CHEAP.hash("x"), "stores": ["S1"], "role": "admin"}, "unknown keys"),
        ({"password": CHEAP.hash("x"), "stores": {"S1": 1}}, "must be a list of codes"),
        ("S1", "expected a mapping"),
    ],
)
def test_malformed_accounts_are_refused(tmp_path: Path, entry: object, message: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(json.dumps({"users": {"alice": entry}}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_users(path)


def test_bad_user_names_and_missing_mapping_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(json.dumps({"users": {"al ice": {"password": CHEAP.hash("x"), "stores": "all"}}}))
    with pytest.raises(ConfigError, match="expected a name of letters"):
        load_users(path)
    path.write_text("- alice\n")
    with pytest.raises(ConfigError, match="'users:' mapping"):
        load_users(path)
    assert load_users(tmp_path / "absent.yaml").accounts == {}


def test_password_hashes_verify_and_short_passwords_are_refused() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "correct horsE")
    assert not verify_password("not a hash", "correct horse")
    with pytest.raises(ConfigError, match="shorter than 8"):
        hash_password("short")


def test_demo_accounts_are_refused_in_production(tmp_path: Path) -> None:
    write_users(tmp_path, {"demo": {"stores": "all", "demo": True}})
    options = ServeOptions(users_file=tmp_path / "users.yaml")
    assert check_accounts(options, Settings(env="dev")) == 1
    with pytest.raises(ConfigError, match="demo accounts"):
        check_accounts(options, Settings(env="prod"))


def test_sign_in_checks_the_users_file_and_pauses_after_repeated_failures(tmp_path: Path) -> None:
    from report_lib.dashboards.auth import DashboardIdentityProvider

    path = write_users(tmp_path, {"alice": {"name": "Alice", "stores": ["S1"]}})
    provider = DashboardIdentityProvider(users_file=str(path))
    user = provider.user_for("alice", "alice-password")
    assert user is not None and (user.username, user.display_name) == ("alice", "Alice")
    assert provider.user_for("alice", "wrong") is None and provider.token == ""
    for _ in range(5):
        assert not provider.locked_out("alice", "10.0.0.1")
        provider.record_failure("alice", "10.0.0.1")
    assert provider.locked_out("alice", "10.0.0.1")
    assert not provider.locked_out("alice", "10.0.0.2") and not provider.locked_out("bob", "10.0.0.1")
    write_users(tmp_path, {"bob": {"stores": ["S1"]}})  # alice removed: the file is read again
    os.utime(path, (1, 1))
    assert provider.directory().get("alice") is None


# --- the access-scoped data layer (SQLite and PostgreSQL) -----------------------------------------------------------


def account(**scope: object) -> Account:
    return Account(username="u", password_hash="", display_name="U", **scope)  # type: ignore[arg-type]


def test_scope_loads_only_the_accounts_stores(tiny: Engine) -> None:
    scoped = ScopedWarehouse.for_account(tiny, account(regions=frozenset({"North"})))
    assert scoped.codes == ("S1", "S2")
    rows = scoped.daily(["S1", "S2"])
    assert set(rows["store_code"]) == {"S1", "S2"}
    assert len(rows) == 2 * DAYS
    for forbidden in (["S3"], ["S1", "S3"], ["S9"], []):
        with pytest.raises(AccessDeniedError, match="You do not have access"):
            scoped.daily(forbidden)


def test_refusals_do_not_reveal_which_stores_exist(tiny: Engine) -> None:
    scoped = ScopedWarehouse.for_account(tiny, account(stores=frozenset({"S1"})))
    messages = []
    for key in ("store:S3", "store:S9"):
        with pytest.raises(AccessDeniedError) as caught:
            scoped.select(key)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "Gamma" not in messages[0]


def test_selections_cover_all_stores_regions_and_stores(tiny: Engine) -> None:
    scoped = ScopedWarehouse.for_account(tiny, account(all_stores=True))
    keys = [selection.key for selection in scoped.selections()]
    assert keys == ["all", "region:North", "region:South", "store:S1", "store:S2", "store:S3"]
    assert scoped.select("region:North").codes == ("S1", "S2")
    assert scoped.select("store:S2").label == "S2 · Beta"
    single = ScopedWarehouse.for_account(tiny, account(stores=frozenset({"S1"})))
    assert [selection.key for selection in single.selections()] == ["store:S1"]


def test_region_kpis_add_the_regions_stores(tiny: Engine) -> None:
    scoped = ScopedWarehouse.for_account(tiny, account(regions=frozenset({"North"})))
    period = Period(dt.date(2024, 3, 4), dt.date(2024, 3, 10), "2024-W10")
    kpis = scoped.kpis(scoped.select("region:North"), period).set_index("kpi")
    assert kpis.loc["revenue", "value"] == pytest.approx(7 * (100.0 + 200.0))
    assert kpis.loc["revenue", "previous"] == pytest.approx(7 * 300.0)
    assert kpis.loc["orders", "value"] == pytest.approx(7 * (10 + 20))
    store = scoped.kpis(scoped.select("store:S2"), period).set_index("kpi")
    assert store.loc["revenue", "value"] == pytest.approx(7 * 200.0)


# --- sessions and deep links ---------------------------------------------------------------------------------------


def test_session_needs_a_signed_in_known_user(tmp_path: Path, tiny_sqlite: str) -> None:
    env = session_env(tmp_path, tiny_sqlite, "alice")
    with pytest.raises(AccessDeniedError, match="needs a signed-in user"):
        open_session({**env, USER_ENV: ""})
    with pytest.raises(AccessDeniedError, match="no longer exists"):
        open_session({**env, USER_ENV: "mallory"})
    session = open_session(env)
    assert session.warehouse.codes == ("S1",)
    assert session.last_day == LAST_DAY


def test_a_missing_or_empty_warehouse_is_one_sentence_and_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "warehouse.db"
    with pytest.raises(WarehouseError, match="cannot be read yet"):
        open_session(session_env(tmp_path, f"sqlite:///{missing}", "alice"))
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(WarehouseError, match=r"runner\.py demo"):
        open_session(session_env(tmp_path, f"sqlite:///{empty}", "alice"))
    assert check_warehouse(Settings(database_url=f"sqlite:///{missing}")) == 0 and not missing.exists()
    assert check_warehouse(Settings(database_url=f"sqlite:///{empty}")) == 0


def test_session_of_an_account_without_data_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    ensure_schema(create_warehouse_engine(sqlite_url))
    with pytest.raises(AccessDeniedError, match="no stores in the warehouse"):
        open_session(session_env(tmp_path, sqlite_url, "alice"))


@pytest.mark.parametrize(
    ("user", "query", "selection", "period", "notes"),
    [
        ("alice", "store=S1&period=2024-W10", "store:S1", "2024-W10", ()),
        ("alice", "store=S3&period=2024-W10", None, "2024-W10", (REFUSED_LINK,)),
        ("alice", "store=S9", None, None, (REFUSED_LINK,)),
        ("alice", "region=South", None, None, (REFUSED_LINK,)),
        ("north", "region=North&metric=orders", "region:North", None, ()),
        ("boss", "stores=all&comparison=last_year", "all", None, ()),
        ("boss", "period=2024-13", None, None, ("The link's period is not one this dashboard understands; "
                                              "showing the default period.",)),
        ("boss", "metric=passwords&comparison=never", None, None, ()),
    ],
)  # fmt: skip
def test_deep_links_preset_only_what_the_account_may_see(
    tmp_path: Path, tiny_sqlite: str, user: str, query: str, selection: str | None, period: str | None, notes: tuple
) -> None:
    session = open_session(session_env(tmp_path, tiny_sqlite, user))
    link = parse_link(query, session)
    assert (link.selection, link.period, link.notes) == (selection, period, notes)
    assert link.metric == ("orders" if "metric=orders" in query else None)
    assert link.comparison == ("last_year" if "comparison=last_year" in query else None)


def test_dashboard_links_for_emails() -> None:
    assert (
        dashboard_link("https://dash.example.com/", "overview", store="S01", period="2024-W10")
        == "https://dash.example.com/voila/render/overview.ipynb?store=S01&period=2024-W10"
    )
    assert dashboard_link("http://h", "forecast") == "http://h/voila/render/forecast.ipynb"


# --- widget callbacks refuse forged values -------------------------------------------------------------------------


def test_a_forged_store_value_shows_a_refusal_and_no_data(tmp_path: Path, tiny_sqlite: str) -> None:
    from report_lib.dashboards.overview import OverviewDashboard

    session = open_session(session_env(tmp_path, tiny_sqlite, "alice", "period=2024-W10"))
    board = OverviewDashboard(session)
    assert board.status.problem is None
    assert "$700" in board.tiles.value  # S1: 7 days x $100
    before = board.tiles.value
    # a forged widget message could change the options and value; the data layer still refuses
    board.selection.options = [("S1 · Alpha", "store:S1"), ("S3", "store:S3")]
    board.selection.value = "store:S3"
    assert board.status.problem is not None and "You do not have access" in board.status.problem
    assert board.tiles.value == before
    assert "7,000" not in board.tiles.value and "Gamma" not in board.title.value


def test_forecasts_are_fitted_once_per_store_and_horizon(
    tmp_path: Path, tiny_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_lib.dashboards import forecast_view

    fits: list[int] = []
    real = forecast_view.forecast_series

    def counted(series: pd.Series, *, horizon: int, **options: Any) -> Any:
        fits.append(horizon)
        return real(series, horizon=horizon, **options)

    monkeypatch.setattr(forecast_view, "forecast_series", counted)
    board = forecast_view.ForecastDashboard(open_session(session_env(tmp_path, tiny_sqlite, "alice")))
    assert board.status.problem is None  # 100 days: too few for 3 folds of 28 days, backtested on 1
    board.horizon.value = 7
    board.bands.value = "none"
    board.horizon.value = 14
    board.horizon.value = 7
    board.metric.value = "orders"
    assert fits == [28, 7, 14, 7]  # one fit per metric and horizon: back to 7 days is the stored result
    assert board.status.problem is None
    shown = board.chart.chart
    assert shown is not None
    forecast = next(trace for trace in shown.data if trace.name == "forecast")
    assert len(forecast.x) == 7
    assert all(trace.visible is False for trace in shown.data if trace.name in {"80% interval", "95% interval"})


# --- cache, pickers, tiles, distributions, bands -------------------------------------------------------------------


def test_cache_keeps_results_evicts_the_oldest_and_never_stores_failures() -> None:
    cache = SessionCache(max_entries=2)
    calls: list[str] = []

    def compute(name: str) -> pd.DataFrame:
        calls.append(name)
        return pd.DataFrame({"x": [1.0]})

    first = cache.get_or_compute("a", lambda: compute("a"))
    first["x"] = 99.0  # a caller modifying its copy does not change the stored value
    assert cache.get_or_compute("a", lambda: compute("a"))["x"].tolist() == [1.0]
    cache.get_or_compute("b", lambda: compute("b"))
    cache.get_or_compute("c", lambda: compute("c"))  # evicts "a", the least recently used
    assert "a" not in cache and "b" in cache and "c" in cache
    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("d", lambda: 1 / 0)
    assert "d" not in cache
    assert calls == ["a", "b", "c"]
    assert (cache.stats.hits, cache.stats.misses) == (1, 4)


@pytest.mark.parametrize(
    ("last_day", "first_week", "first_month"),
    [
        (dt.date(2024, 6, 30), ("2024-W26", "24 Jun"), "2024-06"),  # a Sunday that ends a month
        (dt.date(2024, 6, 15), ("2024-W23", "03 Jun"), "2024-05"),  # a Saturday mid-month
    ],
)
def test_period_options_end_on_the_last_day_with_data(
    last_day: dt.date, first_week: tuple[str, str], first_month: str
) -> None:
    options = period_options(last_day, extra="2023-W01")
    values = [value for _, value in options]
    assert values[0] == "2023-W01"
    assert values[1:5] == ["last-7-days", "last-28-days", "last-week", "last-month"]
    week_label, week_value = next((label, value) for label, value in options if label.startswith("Week"))
    assert week_value == first_week[0] and first_week[1] in week_label
    assert next(value for _, value in options if len(value) == 7 and value[4] == "-") == first_month
    assert len(values) == 1 + 4 + 8 + 6


def test_periods_are_described_for_people() -> None:
    assert describe_period(Period(dt.date(2024, 3, 4), dt.date(2024, 3, 10), "2024-W10")) == (
        "2024-W10 · 04 Mar – 10 Mar 2024"
    )
    assert describe_period(Period(dt.date(2024, 2, 1), dt.date(2024, 2, 28), "2024-02-01:2024-02-28")) == (
        "28 days · 01 Feb – 28 Feb 2024"
    )


def test_kpi_tiles_show_formatted_values_tones_and_escape_text() -> None:
    totals = pd.DataFrame(
        {"revenue": [1500.0, 1000.0], "orders": [30.0, 40.0], "units": [60.0, 80.0], "customers": [20.0, 25.0],
         "cost": [750.0, 500.0], "margin": [750.0, 500.0], "returns": [0.0, 0.0], "return_units": [0.0, 0.0],
         "rows": [7, 7], "approximate": [False, False], "customers_exact": [True, True]},
        index=["current", "previous"],
    )  # fmt: skip
    kpis = kpis_from_totals(totals)
    kpis.loc[kpis["kpi"] == "orders", "label"] = "<Orders>"
    tiles = kpi_tiles_html(kpis, currency="USD", comparison="previous", only=("revenue", "orders"))
    assert tiles.count('class="sd-tile"') == 2
    assert "$1,500" in tiles and "+50.0%" in tiles and "tone-good" in tiles
    assert "−25.0%" in tiles and "tone-bad" in tiles
    assert "&lt;Orders&gt;" in tiles and "<Orders>" not in tiles


def test_status_line_turns_errors_into_sentences() -> None:
    status = StatusLine()
    with status.working("Working…"):
        raise InsufficientDataError("Too few days for a forecast.")
    assert status.problem == "Too few days for a forecast." and "sd-status-info" in status.widget._dom_classes
    with status.working("Working…"):
        raise KeyError("internal detail")
    assert status.problem is not None and status.problem.startswith("Something went wrong")
    assert "internal detail" not in status.widget.value and "Traceback" not in status.widget.value
    with status.working("Working…"):
        pass
    assert status.problem is None and status.widget.value == ""


def test_value_distribution_bins_raw_figures() -> None:
    customers = pd.DataFrame(
        {"recency_days": [0, 7, 8, 30, 400], "frequency": [1, 1, 2, 6, 25], "monetary": [5.0, 15.0, 15.0, 60.0, 0.0]}
    )
    recency = value_distribution(customers, "recency_days")
    assert recency["customers"].tolist() == [2, 2, 0, 0, 0, 1]
    frequency = value_distribution(customers, "frequency")
    assert frequency["customers"].tolist() == [2, 1, 0, 1, 0, 1]
    # 95th percentile 120 + 0.8 * 580 = 584: the three largest 1-2-5 edges below it, then "above"
    edges, labels = nice_edges(pd.Series([3.0, 40.0, 90.0, 120.0, 700.0]), bins=4)
    assert edges == (100.0, 200.0, 500.0, np.inf)
    assert labels == ("< 100", "100–200", "200–500", "≥ 500")


def test_hiding_a_band_hides_both_of_its_edges() -> None:
    days = pd.date_range("2024-03-11", periods=3, freq="D")
    forecast = pd.DataFrame(
        {"date": days, "mean": [10.0] * 3, "lo80": [8.0] * 3, "hi80": [12.0] * 3, "lo95": [6.0] * 3, "hi95": [14.0] * 3}
    )
    history = pd.Series([9.0, 11.0], index=pd.date_range("2024-03-09", periods=2, freq="D"))
    fig = plot_forecast(history, forecast, day_col="date")
    hide_band(fig, "95")
    hidden = [trace.visible is False for trace in fig.data]
    upper_95 = next(i for i, trace in enumerate(fig.data) if trace.name == "95% interval") - 1
    assert hidden.count(True) == 2 and hidden[upper_95] and fig.data[upper_95].y.tolist() == [14.0] * 3


# --- server configuration and kernel ownership ---------------------------------------------------------------------


def test_server_configuration_is_locked_down(tmp_path: Path) -> None:
    config = build_config(ServeOptions(port=9999, users_file=tmp_path / "users.yaml"), Settings())
    page = config.VoilaConfiguration
    assert page.show_tracebacks is False and page.strip_sources is True
    assert page.allow_template_override == "NO" and page.allow_theme_override == "NO"
    assert page.preheat_kernel is False and page.file_allowlist == []
    assert callable(page.prelaunch_hook)
    assert config.Voila.ip == "127.0.0.1" and config.Voila.port_retries == 0 and config.Voila.config_file_paths == []
    kernels = config.DashboardKernelManager
    assert kernels.cull_idle_timeout > 0 and kernels.memory_limit_mb > 0
    assert kernels.kernel_environment["REPORT_DATABASE_URL"].startswith("sqlite:////")
    assert config.DashboardIdentityProvider.secure_cookie is None  # decided by the request's protocol


def test_the_cookie_secret_can_outlive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_DASHBOARD_COOKIE_SECRET", "s" * 40)
    assert build_config(ServeOptions(), Settings()).Voila.cookie_secret == b"s" * 40
    (tmp_path / "secret").write_bytes(b"short")
    with pytest.raises(ConfigError, match="at least 32"):
        build_config(ServeOptions(cookie_secret_file=tmp_path / "secret"), Settings())
    monkeypatch.delenv("REPORT_DASHBOARD_COOKIE_SECRET")
    first, second = (build_config(ServeOptions(), Settings()).Voila.cookie_secret for _ in range(2))
    assert len(first) == 32 and first != second  # random per start by default


def test_https_and_secure_cookies_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both --certfile and --keyfile"):
        ServeOptions(certfile=tmp_path / "cert.pem")
    config = build_config(ServeOptions(secure_cookies=True), Settings())
    assert config.DashboardIdentityProvider.secure_cookie is True
    assert "Strict-Transport-Security" in config.Voila.tornado_settings["headers"]


@pytest.mark.parametrize(
    ("resource", "kernel_id", "user", "allowed"),
    [
        ("kernels", "k-alice", "alice", True),
        ("kernels", "k-alice", "bob", False),
        ("kernels", "k-unknown", "alice", False),
        ("kernels", None, "alice", False),  # listing every kernel
        ("contents", None, "bob", True),
    ],
)
def test_kernels_are_reachable_only_by_their_owner(
    resource: str, kernel_id: str | None, user: str, allowed: bool
) -> None:
    owners = {"k-alice": "alice"}
    handler = SimpleNamespace(kernel_id=kernel_id, path_kwargs={}, kernel_manager=SimpleNamespace(owner_of=owners.get))
    authorizer = KernelOwnerAuthorizer()
    assert authorizer.is_authorized(handler, SimpleNamespace(username=user), "execute", resource) is allowed
