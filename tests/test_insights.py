import datetime as dt
import re

import pandas as pd
import pytest

from report_lib.errors import DataValidationError
from report_lib.insights import explain_change, format_count, format_kpi, format_money, format_pct, write_insights
from report_lib.kpis import KPIS, change_pct, compute_kpis
from report_lib.periods import Period, parse_period

NAN = float("nan")
WEEK = parse_period("2024-W10", today=dt.date(2024, 3, 20))
MONTH = parse_period("2024-03", today=dt.date(2024, 4, 20))


def kpi_table(rows: dict[str, tuple[float, float, float]], *, approximate: bool = False) -> pd.DataFrame:
    """A KPI table from {kpi: (value, previous, last_year)}; KPIs not given are unknown."""
    records = []
    for kpi, label, unit in KPIS:
        value, previous, last_year = rows.get(kpi, (NAN, NAN, NAN))
        records.append(
            {
                "kpi": kpi,
                "label": label,
                "unit": unit,
                "value": value,
                "previous": previous,
                "change": value - previous,
                "change_pct": change_pct(value, previous),
                "last_year": last_year,
                "change_ly": value - last_year,
                "change_pct_ly": change_pct(value, last_year),
                "approximate": approximate,
            }
        )
    return pd.DataFrame.from_records(records)


FULL = kpi_table(
    {
        "revenue": (41_200, 47_000, 39_600),
        "orders": (1_200, 1_333, 1_150),
        "aov": (41_200 / 1_200, 47_000 / 1_333, 39_600 / 1_150),
        "margin_pct": (32.1, 33.3, 30.0),
        "return_rate": (4.2, 3.4, 4.0),
    }
)
CATEGORIES = pd.DataFrame(
    {
        "category": ["Grocery", "Electronics", "Toys"],
        "revenue": [19_000.0, 9_567.0, 12_633.0],
        "previous": [20_000.0, 13_667.0, 13_333.0],
    }
)


@pytest.mark.parametrize(
    ("value", "currency", "signed", "expected"),
    [
        (41_200, "EUR", False, "€41,200"),
        (34.333, "USD", False, "$34.33"),
        (-4_100, "GBP", False, "−£4,100"),
        (4_100, "usd", True, "+$4,100"),
        (1_250, "CHF", False, "CHF 1,250"),
        (999.6, "JPY", False, "¥1,000"),
        (-0.001, "USD", True, "$0.00"),
        (NAN, "USD", False, "n/a"),
    ],
)
def test_format_money(value: float, currency: str, signed: bool, expected: str) -> None:
    assert format_money(value, currency, signed=signed) == expected


def test_other_formats() -> None:
    assert [format_pct(12.345), format_pct(-3.0, signed=True), format_pct(0.04, signed=True)] == [
        "12.3%",
        "−3.0%",
        "0.0%",
    ]
    assert [format_count(1_199.6), format_count(-2, signed=True), format_count(NAN)] == ["1,200", "−2", "n/a"]
    assert [format_kpi(2.4, "ratio"), format_kpi(43.33, "percent"), format_kpi(30, "money", "EUR")] == [
        "2.40",
        "43.3%",
        "€30.00",
    ]


def test_full_insights_in_order() -> None:
    sentences = write_insights(FULL, category_changes=CATEGORIES, period=WEEK)
    assert sentences == [
        "Revenue fell 12.3% against the previous week ($41,200 vs $47,000).",
        "Electronics (−30.0%, −$4,100) explains most of the drop.",
        "Against the same week last year, revenue rose 4.0% ($41,200 vs $39,600).",
        "Orders fell 10.0% to 1,200; the average order value fell 2.6% to $34.33.",
        "Gross margin was 32.1% of revenue, down 1.2 points from 33.3%.",
    ]


def test_every_number_in_the_sentences_is_in_the_tables() -> None:
    sentences = write_insights(FULL, category_changes=CATEGORIES, period=WEEK, store_name="Lyon 2")
    table, explained = FULL.set_index("kpi"), explain_change(CATEGORIES)
    shown = set()
    for _, row in table.iterrows():
        unit = str(row["unit"])
        shown |= {format_kpi(row[c], unit) for c in ("value", "previous", "last_year")}
        shown |= {
            format_pct(abs(row["change_pct"])),
            format_pct(abs(row["change_pct_ly"])),
            f"{abs(row['change']):.1f}",
        }
    shown |= {format_money(v, signed=True) for v in explained["change"]} | set(map(format_pct, explained["change_pct"]))
    shown |= set(map(format_pct, explained["change_pct"].abs())) | {
        format_pct(v, decimals=0) for v in explained["share_pct"]
    }
    numbers = {re.sub(r"[^\d.,]", "", token) for token in " ".join(shown).split()}
    checked = 0
    for sentence in sentences:
        for number in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", sentence.replace("2024-W10", "").replace("Lyon 2", "")):
            assert number in numbers, f"{number} in {sentence!r} is not a table value"
            checked += 1
    assert checked == 15


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        ((41_200, 41_150, NAN), "Revenue was flat against the previous month ($41,200 vs $41,150)."),
        ((500, 0, NAN), "Revenue was $500.00 in 2024-03, against $0.00 the previous month."),
        ((500, NAN, NAN), "Revenue was $500.00 in 2024-03; there is no data for the previous month to compare with."),
        ((-50, 100, NAN), "Revenue fell 150.0% against the previous month (−$50.00 vs $100.00)."),
    ],
)
def test_headline_cases(revenue: tuple[float, float, float], expected: str) -> None:
    assert write_insights(kpi_table({"revenue": revenue}), period=MONTH)[0] == expected


def test_no_data_says_so_in_one_sentence() -> None:
    empty = kpi_table({})
    assert write_insights(empty, period=WEEK, store_name="Lyon") == ["No sales data for 2024-W10 at Lyon."]
    assert write_insights(empty) == ["No sales data for this period."]


def test_store_name_and_weekly_approximation_are_said() -> None:
    table = kpi_table({"revenue": (1_500, 1_400, NAN)}, approximate=True)
    assert write_insights(table, period=MONTH, store_name="Walmart 1", currency="EUR") == [
        "At Walmart 1, revenue rose 7.1% against the previous month "
        "(€1,500 vs €1,400; approximate, from weekly totals)."
    ]


def test_category_sentence_when_no_category_dominates() -> None:
    categories = pd.DataFrame(
        {
            "category": ["A", "B", "C"],
            "revenue": [8_000.0, 8_200.0, 8_200.0],
            "previous": [10_000.0, 10_000.0, 10_000.0],
        }
    )
    table = kpi_table({"revenue": (24_400, 30_000, NAN)})
    assert write_insights(table, category_changes=categories)[1] == (
        "The largest part of the drop is A (−20.0%, −$2,000), 36% of it."
    )


@pytest.mark.parametrize(
    "categories",
    [
        pd.DataFrame({"category": ["A"], "revenue": [12_000.0], "previous": [10_000.0]}),  # rose while revenue fell
        pd.DataFrame({"category": [], "revenue": [], "previous": []}),  # aggregate-only store
    ],
)
def test_no_category_sentence_when_categories_do_not_explain(categories: pd.DataFrame) -> None:
    table = kpi_table({"revenue": (24_400, 30_000, NAN)})
    assert len(write_insights(table, category_changes=categories)) == 1


def test_new_category_has_no_percentage() -> None:
    categories = pd.DataFrame({"category": ["New"], "revenue": [500.0], "previous": [0.0]})
    table = kpi_table({"revenue": (1_500, 1_000, NAN)})
    assert write_insights(table, category_changes=categories)[1] == "New (+$500.00) explains most of the rise."


def test_explain_change_table() -> None:
    got = explain_change(CATEGORIES)
    assert got["category"].tolist() == ["Electronics", "Grocery", "Toys"]
    assert got["change"].tolist() == [-4_100, -1_000, -700]
    assert got["share_pct"].tolist() == pytest.approx([4_100 / 58, 1_000 / 58, 700 / 58])
    with pytest.raises(DataValidationError, match="missing columns \\['previous'\\]"):
        explain_change(CATEGORIES.drop(columns=["previous"]))


def test_flat_orders_and_unchanged_margin_and_no_returns() -> None:
    table = kpi_table(
        {
            "revenue": (1_000, 900, NAN),
            "orders": (100, 100, NAN),
            "aov": (10, 9, NAN),
            "margin_pct": (30.0, 30.02, NAN),
            "return_rate": (0.0, 0.0, NAN),
        }
    )
    assert write_insights(table, period=WEEK)[1:] == [
        "Orders were flat at 100; the average order value rose 11.1% to $10.00.",
        "Gross margin was 30.0% of revenue, unchanged from the previous week.",
    ]


def test_insights_from_computed_kpis_are_deterministic() -> None:
    daily = pd.DataFrame(
        {
            "store_code": "S",
            "day": pd.to_datetime(["2024-02-26", "2024-03-04"]),
            "revenue": [200.0, 150.0],
            "orders": [10.0, 10.0],
            "units": [20.0, 15.0],
            "customers": [8.0, 7.0],
            "cost": [120.0, 90.0],
            "margin": [80.0, 60.0],
            "returns": [0.0, 0.0],
            "return_units": [0.0, 0.0],
        }
    )
    period = Period(dt.date(2024, 3, 4), dt.date(2024, 3, 10), "2024-W10")
    first = write_insights(compute_kpis(daily, period), period=period)
    assert first == write_insights(compute_kpis(daily, period), period=period)
    assert first == [
        "Revenue fell 25.0% against the previous week ($150.00 vs $200.00).",
        "Orders were flat at 10; the average order value fell 25.0% to $15.00.",
        "Gross margin was 40.0% of revenue, unchanged from the previous week.",
    ]
