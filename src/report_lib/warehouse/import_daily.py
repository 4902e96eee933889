"""Store-total imports: one row per store and day (grain 'day') or per store and week (grain 'week').

Weekly totals stay weekly: one daily_metrics row per store and week, dated on the week's last day, grain 'week';
they are never spread over days. Revenue alone or orders alone is enough; other metrics are optional.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection

from report_lib.warehouse import import_checks as checks
from report_lib.warehouse import import_rejects as reasons
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.import_parse import parse_count, parse_dates, parse_money
from report_lib.warehouse.import_rejects import RowRejects
from report_lib.warehouse.import_write import existing_metric_days

MONEY_METRICS = ("revenue", "cost", "returns")
COUNT_METRICS = ("orders", "units", "customers")
WEEK_DAYS = 7


def validate_daily(
    raw: pd.DataFrame, columns: dict[str, str], options: ImportOptions
) -> tuple[pd.DataFrame, RowRejects]:
    """Typed store totals (one per raw row, same index) and the rows rejected by checks that need no database."""
    rejects = RowRejects(raw.index)
    totals = checks.resolve_stores(raw, columns, options)
    date_column = columns["date"]
    dates, bad_date = parse_dates(raw[date_column], date_format=options.date_format)
    shift = pd.Timedelta(days=WEEK_DAYS - 1) if options.grain == "week" and options.week_date == "start" else None
    totals["day"] = (dates + shift if shift is not None else dates).dt.normalize()
    bad: dict[str, pd.Series] = {}
    for field in MONEY_METRICS:
        totals[field], bad[field] = parse_money(checks.column_or_empty(raw, columns, field), decimal=options.decimal)
    for field in COUNT_METRICS:
        totals[field], bad[field] = parse_count(checks.column_or_empty(raw, columns, field), decimal=options.decimal)
    store_column = checks.store_column_name(columns)
    checks.check_missing(rejects, totals["store_code"].isna(), column=store_column, what="the store")
    checks.check_missing(rejects, dates.isna() & ~bad_date, column=date_column, what="the date")
    _check_has_metric(rejects, totals, columns, bad)
    date_shape = options.date_format or "ISO 8601 (YYYY-MM-DD)"
    rejects.add(
        bad_date,
        reason=reasons.BAD_DATE,
        column=date_column,
        found=raw[date_column],
        expected=f"a date as {date_shape}",
    )
    _check_metrics(rejects, raw, totals, columns, bad)
    checks.check_future(rejects, totals["day"], raw[date_column], column=date_column, as_of=options.today())
    checks.check_too_long(rejects, totals["store_code"], column=store_column)
    checks.check_store_code(rejects, totals["store_code"], column=store_column)
    checks.check_duplicates(rejects, raw)
    _check_conflicts(rejects, totals, column=date_column)
    return totals, rejects


def _check_has_metric(
    rejects: RowRejects, totals: pd.DataFrame, columns: dict[str, str], bad: dict[str, pd.Series]
) -> None:
    present = [field for field in ("revenue", "orders") if field in columns]
    empty = pd.Series(True, index=totals.index)
    for field in present:
        empty &= totals[field].isna() & ~bad[field]
    column = " / ".join(columns[field] for field in present)
    checks.check_missing(rejects, empty, column=column, what="revenue or orders (at least one)")


def _check_metrics(
    rejects: RowRejects, raw: pd.DataFrame, totals: pd.DataFrame, columns: dict[str, str], bad: dict[str, pd.Series]
) -> None:
    present = [field for field in (*MONEY_METRICS, *COUNT_METRICS) if field in columns]
    for field in present:
        is_money = field in MONEY_METRICS
        rejects.add(
            bad[field],
            reason=reasons.BAD_MONEY if is_money else reasons.BAD_COUNT,
            column=columns[field],
            found=raw[columns[field]],
            expected="an amount such as 1234.50 or $1,234.50" if is_money else "a whole number such as 12",
        )
    for field in present:
        rejects.add(
            totals[field] < 0,
            reason=reasons.NEGATIVE_AMOUNT,
            column=columns[field],
            found=raw[columns[field]],
            expected="zero or more (store totals cannot be negative)",
        )


def _check_conflicts(rejects: RowRejects, totals: pd.DataFrame, *, column: str) -> None:
    """A second, different row for a store and day already given earlier in the file."""
    keyed = totals.loc[rejects.ok, ["store_code", "day"]]
    later = keyed.duplicated(keep="first")
    if not later.any():
        return
    first_line = pd.Series(keyed.index, index=keyed.index).groupby([keyed["store_code"], keyed["day"]]).transform("min")
    found = pd.Series("", index=totals.index, dtype="str")
    found[later[later].index] = "same store and day as line " + first_line[later].astype("str")
    rejects.add(
        later.reindex(totals.index, fill_value=False),
        reason=reasons.CONFLICTING_ROW,
        column=column,
        found=found,
        expected="one row per store and day (per week for weekly files)",
    )


def check_loaded_days(
    conn: Connection, totals: pd.DataFrame, rejects: RowRejects, *, span: int, column: str, found: pd.Series
) -> None:
    """Reject rows whose days are already covered in daily_metrics (by a day row or by a weekly row's week)."""
    ok = totals.loc[rejects.ok]
    if ok.empty:
        return
    first = (ok["day"].min() - pd.Timedelta(days=WEEK_DAYS)).date()
    last = (ok["day"].max() + pd.Timedelta(days=WEEK_DAYS)).date()
    existing = existing_metric_days(conn, sorted(ok["store_code"].unique()), first, last)
    covered = _covered_days(existing, existing["grain"].map({"week": WEEK_DAYS}).fillna(1).astype("int64"))
    wanted = _covered_days(ok.reset_index(), pd.Series(span, index=range(len(ok)), dtype="int64"))
    hits = wanted.merge(covered[["store_code", "covered"]].drop_duplicates(), on=["store_code", "covered"])
    lines = pd.Index(hits["_row"].unique()) if not hits.empty else pd.Index([], dtype="int64")
    rejects.add(
        pd.Series(totals.index.isin(lines), index=totals.index),
        reason=reasons.ALREADY_LOADED,
        column=column,
        found=found,
        expected="a store and day not yet in the warehouse (an earlier import or the refresh already has it)",
    )


def _covered_days(rows: pd.DataFrame, spans: pd.Series) -> pd.DataFrame:
    """One row per day covered: a day row covers its day, a week row the 7 days ending on its day."""
    repeated = rows.loc[rows.index.repeat(spans.to_numpy())].copy()
    offsets = repeated.groupby(level=0).cumcount().to_numpy()
    repeated["covered"] = repeated["day"].to_numpy() - pd.to_timedelta(offsets, unit="D").to_numpy()
    return repeated.reset_index(drop=True)


def metric_rows(totals: pd.DataFrame, *, grain: str, batch_id: int) -> pd.DataFrame:
    """daily_metrics rows for accepted totals, source 'import'; margin only where revenue and cost are both known."""
    frame = pd.DataFrame(
        {
            "store_code": totals["store_code"],
            "day": totals["day"],
            "grain": grain,
            **{field: totals[field] for field in (*MONEY_METRICS, *COUNT_METRICS)},
        }
    )
    frame["margin"] = totals["revenue"] - totals["cost"]
    return frame.assign(source="import", batch_id=batch_id).reset_index(drop=True)
