"""Every report notebook executed end to end by the runner on a small demo warehouse, and what it recorded checked
against the same numbers computed independently in SQL.

One demo chain (3 stores, 400 days) plus one store with imported weekly totals only (the Walmart case) and one
young store with 100 days of imported daily totals (too short for the forecast's usual three backtest folds).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from report_lib.params import ParameterFiles
from report_lib.periods import parse_period
from report_lib.record import read_records
from report_lib.run.backends import LocalBackend
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy
from report_lib.run.plan import RunRequest, plan_jobs
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.importers import import_daily
from report_lib.warehouse.loaders.daily import load_stores, stores_with_order_lines

TODAY = dt.date.today()
PERIOD = parse_period("last-week", today=TODAY)
WEEKLY_STORE = "W01"
YOUNG_STORE = "Y01"


@pytest.fixture(scope="session")
def chain(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The demo chain plus W01, a store with imported weekly totals only (the Walmart case), and Y01, a young store
    with 100 days of daily totals."""
    folder = tmp_path_factory.mktemp("totals-import")
    yesterday = pd.Timestamp(TODAY) - pd.Timedelta(days=1)
    weeks = pd.date_range(end=yesterday, periods=143, freq="W-FRI")
    days = pd.date_range(end=yesterday, periods=100, freq="D")
    for prefix, grain, dates, level, season in (("W", "week", weeks, 50_000, 52), ("Y", "day", days, 7_000, 7)):
        noise = np.random.default_rng(len(dates)).normal(0, 0.05, len(dates))
        revenue = level * (1 + 0.2 * np.sin(np.arange(len(dates)) * 2 * np.pi / season) + noise)
        totals = pd.DataFrame({"store": "1", "date": dates.strftime("%Y-%m-%d"), "revenue": revenue.round(2)})
        csv = folder / f"{grain}.csv"
        totals.to_csv(csv, index=False)
        options = ImportOptions(
            grain=grain, create_stores=True, store_prefix=prefix, store_pad=2, rejects_path=folder / f"{grain}-rejects"
        )
        import_daily(demo_engine, csv, options=options)
    return demo_engine


@pytest.fixture(scope="session")
def executed(chain: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """(store, notebook) -> JobResult of one parallel run of every notebook for every store."""
    output = tmp_path_factory.mktemp("reports")
    request = RunRequest(stores="all", notebooks="all", period=PERIOD.label)
    jobs = plan_jobs(
        request,
        stores=load_stores(chain),
        files=ParameterFiles(),
        output_dir=output,
        with_order_lines=stores_with_order_lines(chain),
    )
    options = ExecutionOptions(
        database_url=chain.url.render_as_string(),
        batch="notebook-test",
        formats=(),
        retry=RetryPolicy(retries=0),
        execution_timeout=300,
    )
    runnable = [job for job in jobs if job.skip_reason is None]
    results: list[JobResult] = LocalBackend().execute(runnable, options, workers=2, on_result=lambda r: None)
    by_key: dict[tuple[str, str], Any] = {(job.store, job.notebook.name): job for job in jobs if job.skip_reason}
    by_key.update({(r.store, r.notebook): r for r in results})
    return by_key


def records(executed: dict[tuple[str, str], Any], store: str, notebook: str) -> dict[str, Any]:
    result = executed[(store, notebook)]
    assert result.status == "ok", f"{store}/{notebook} failed: {result.error}"
    return read_records(nbformat.read(Path(result.outputs["ipynb"]), as_version=4))


def sql_one(engine: Engine, query: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(query), params).one()


def period_revenue(engine: Engine, store: str, start: dt.date, end: dt.date) -> float:
    row = sql_one(
        engine,
        "SELECT SUM(quantity * unit_price - discount) FROM order_lines WHERE store_code = :s AND day BETWEEN :a AND :b",
        s=store,
        a=start.isoformat(),
        b=end.isoformat(),
    )
    return float(row[0])


def test_every_notebook_ran_or_was_skipped_for_a_reason(executed: dict[tuple[str, str], Any]) -> None:
    failed = {key: r.error for key, r in executed.items() if getattr(r, "status", None) == "failed"}
    assert failed == {}
    skipped = sorted(name for (store, name), job in executed.items() if getattr(job, "skip_reason", None))
    assert skipped == sorted(2 * ["margins_stock", "recommendations", "segments"])  # the two stores of totals, only


def test_overview_kpis_match_sql(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    recorded = records(executed, "S01", "store_overview")
    kpis = {row["kpi"]: row for row in recorded["kpis"]}
    expected = period_revenue(demo_engine, "S01", PERIOD.start, PERIOD.end)
    previous = PERIOD.previous()
    assert kpis["revenue"]["value"] == pytest.approx(expected, rel=1e-9)
    before = period_revenue(demo_engine, "S01", previous.start, previous.end)
    assert kpis["revenue"]["previous"] == pytest.approx(before)
    orders = sql_one(
        demo_engine,
        "SELECT COUNT(DISTINCT order_id) FROM order_lines WHERE store_code='S01' AND quantity > 0 "
        "AND day BETWEEN :a AND :b",
        a=PERIOD.start.isoformat(),
        b=PERIOD.end.isoformat(),
    )[0]
    assert kpis["orders"]["value"] == orders
    assert kpis["aov"]["value"] == pytest.approx(expected / orders)
    assert recorded["period_label"] == PERIOD.label
    assert any("revenue" in sentence.lower() for sentence in recorded["insights"])
    assert set(recorded) >= {"figure:trend", "figure:kpi_change"}


def test_trends_monthly_revenue_matches_sql(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    monthly = records(executed, "S02", "trends")["monthly_revenue"]
    month, value = list(monthly.items())[-1]
    first = dt.date.fromisoformat(month[:10])
    last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
    assert value == pytest.approx(period_revenue(demo_engine, "S02", first, last))


def test_forecast_is_coherent(executed: dict[tuple[str, str], Any]) -> None:
    recorded = records(executed, "S01", "forecast")
    forecast = pd.DataFrame(recorded["forecast"])
    assert len(forecast) == 28
    assert (forecast["lo95"] <= forecast["lo80"]).all() and (forecast["lo80"] <= forecast["mean"]).all()
    assert (forecast["mean"] <= forecast["hi80"]).all() and (forecast["hi80"] <= forecast["hi95"]).all()
    assert pd.to_datetime(forecast["date"]).min().date() == PERIOD.end + dt.timedelta(days=1)
    mase = recorded["forecast_mase"]
    assert recorded["forecast_fallback"] == (recorded["forecast_model"].lower().startswith("seasonal naive"))
    assert np.isfinite(mase["seasonal_naive"])


def test_weekly_only_store_gets_weekly_kpis_and_forecast(executed: dict[tuple[str, str], Any]) -> None:
    overview = records(executed, WEEKLY_STORE, "store_overview")
    revenue = {row["kpi"]: row for row in overview["kpis"]}["revenue"]
    assert revenue["approximate"] is True
    assert revenue["value"] > 0
    forecast = pd.DataFrame(records(executed, WEEKLY_STORE, "forecast")["forecast"])
    assert len(forecast) == 4  # 28 days ahead is 4 weeks
    assert records(executed, WEEKLY_STORE, "anomalies")["store"] == WEEKLY_STORE


def test_a_young_store_gets_a_forecast_backtested_on_fewer_folds(executed: dict[tuple[str, str], Any]) -> None:
    recorded = records(executed, YOUNG_STORE, "forecast")
    forecast = pd.DataFrame(recorded["forecast"])
    assert len(forecast) == 28 and (forecast["lo95"] <= forecast["hi95"]).all()
    notebook = nbformat.read(executed[(YOUNG_STORE, "forecast")].outputs["ipynb"], as_version=4)
    shown = "".join(str(output.get("data", {})) for cell in notebook.cells for output in cell.get("outputs", []))
    assert "1 fold of 28 days" in shown  # (100 - 56) // 28: the note says how little it was tested on


def test_anomaly_flags_carry_the_days_revenue(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    flags = records(executed, "S01", "anomalies")["anomalies_history"]
    assert flags, "the demo plants anomalies; some must be flagged over two years"
    for flag in flags[:5]:
        day = dt.date.fromisoformat(flag["day"][:10])
        assert flag["value"] == pytest.approx(period_revenue(demo_engine, "S01", day, day))
        assert flag["direction"] in {"up", "down"}


def test_segments_count_every_identified_customer(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    recorded = records(executed, "S03", "segments")
    customers = sql_one(
        demo_engine,
        "SELECT COUNT(DISTINCT customer_id) FROM order_lines WHERE store_code='S03' AND customer_id IS NOT NULL "
        "AND day <= :b",
        b=PERIOD.end.isoformat(),
    )[0]
    assert recorded["customers"] == customers
    assert sum(row["customers"] for row in recorded["segment_profile"]) == customers
    assert 2 <= recorded["clusters_k"] <= 8


def test_top_pair_lift_matches_sql(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    pair = records(executed, "S01", "recommendations")["top_pairs"][0]
    window = dict(a=(PERIOD.end - dt.timedelta(days=90)).isoformat(), b=PERIOD.end.isoformat())
    scope = "FROM order_lines WHERE store_code='S01' AND quantity > 0 AND day BETWEEN :a AND :b"
    total = sql_one(demo_engine, f"SELECT COUNT(DISTINCT order_id) {scope}", **window)[0]
    count_with = f"SELECT COUNT(DISTINCT order_id) {scope} AND sku = :x"
    with_a = sql_one(demo_engine, count_with, x=pair["item_a"], **window)[0]
    with_b = sql_one(demo_engine, count_with, x=pair["item_b"], **window)[0]
    both = sql_one(
        demo_engine,
        f"SELECT COUNT(*) FROM (SELECT order_id {scope} AND sku IN (:x, :y) GROUP BY order_id "
        "HAVING COUNT(DISTINCT sku) = 2) AS t",
        x=pair["item_a"],
        y=pair["item_b"],
        **window,
    )[0]
    assert pair["orders_together"] == both
    assert pair["lift"] == pytest.approx(both * total / (with_a * with_b))
    assert pair["lift"] > 2  # the demo plants real affinities


def test_margins_and_reorder_list(executed: dict[tuple[str, str], Any], demo_engine: Engine) -> None:
    recorded = records(executed, "S02", "margins_stock")
    revenue = sum(row["revenue"] for row in recorded["margins_by_category"])
    assert revenue == pytest.approx(period_revenue(demo_engine, "S02", PERIOD.start, PERIOD.end))
    assert recorded["reorder"], "the demo leaves some products below their reorder point"
    assert all(row["status"] != "ok" for row in recorded["reorder"])
