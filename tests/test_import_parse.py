"""Unit tests of the import building blocks that need no database: parsers, reading, mapping, options, rejects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report_lib.errors import ConfigError, ImportRejectedError
from report_lib.warehouse.import_fields import resolve_columns
from report_lib.warehouse.import_options import ImportOptions, parse_mapping
from report_lib.warehouse.import_parse import clean_text, parse_count, parse_dates, parse_money, store_codes
from report_lib.warehouse.import_read import read_export, sniff_delimiter
from report_lib.warehouse.import_rejects import RowRejects

DATA = Path(__file__).parent / "data" / "import"
BAD = "<unparseable>"  # marks values the parsers must refuse, in the tables below


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        ("12.5", ".", 12.5),
        ("$1,234.50", ".", 1234.5),
        ("$ 7.25", ".", 7.25),
        ("1,234,567.5", ".", 1234567.5),
        ("GBP 4", ".", 4.0),
        ("(3.00)", ".", -3.0),
        ("-2", ".", -2.0),
        ("1e3", ".", 1000.0),
        ("€ 12,50", ",", 12.5),
        ("1.234,50 €", ",", 1234.5),
        ("1 234,50", ",", 1234.5),
        ("12", ",", 12.0),
        ("1,5", ".", BAD),  # a decimal comma in a decimal-point file
        ("12.5", ",", BAD),  # a decimal point in a decimal-comma file
        ("12,34,5", ".", BAD),  # not a thousands grouping
        ("abc", ".", BAD),
        ("12abc", ".", BAD),
        ("inf", ".", BAD),
        ("-", ".", BAD),
    ],
)
def test_parse_money(text: str, decimal: str, expected: float | None) -> None:
    values, bad = parse_money(pd.Series([text], dtype="str"), decimal=decimal)
    if expected is BAD:
        assert bool(bad.iloc[0]) and pd.isna(values.iloc[0])
    else:
        assert not bad.iloc[0]
        assert values.iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "  ", "NA", "n/a", "NULL", "nan", "None", "#N/A"])
def test_missing_spellings_are_missing_not_bad(text: str) -> None:
    values, bad = parse_money(pd.Series([text], dtype="str"))
    assert pd.isna(values.iloc[0]) and not bad.iloc[0]
    assert pd.isna(clean_text(pd.Series([text], dtype="str")).iloc[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), ("-3", -3), ("4.0", 4), ("1,200", 1200), (" 7 ", 7), ("1.5", BAD), ("two", BAD), ("", None)],
)
def test_parse_count(text: str, expected: int | None) -> None:
    values, bad = parse_count(pd.Series([text], dtype="str"))
    assert values.dtype == "Int64"
    if expected is BAD:
        assert bool(bad.iloc[0]) and pd.isna(values.iloc[0])
    elif expected is None:
        assert not bad.iloc[0] and pd.isna(values.iloc[0])
    else:
        assert not bad.iloc[0]
        assert values.iloc[0] == expected


@pytest.mark.parametrize(
    ("text", "date_format", "expected"),
    [
        ("2011-03-10 16:16:00", None, "2011-03-10 16:16:00"),
        ("2011-03-10", None, "2011-03-10 00:00:00"),
        ("2011-03-10T16:16:00+01:00", None, "2011-03-10 16:16:00"),  # wall-clock kept, offset dropped
        ("2011-03-10T01:00:00Z", None, "2011-03-10 01:00:00"),
        ("05-02-2010", "%d-%m-%Y", "2010-02-05 00:00:00"),
        ("01.03.2024 10:00", "%d.%m.%Y %H:%M", "2024-03-01 10:00:00"),
        ("2010-02-05", "%d-%m-%Y", BAD),
        ("2011-02-30", None, BAD),
        ("31/02/2024", None, BAD),
        ("yesterday", None, BAD),
    ],
)
def test_parse_dates(text: str, date_format: str | None, expected: str | None) -> None:
    values, bad = parse_dates(pd.Series([text], dtype="str"), date_format=date_format)
    if expected is BAD:
        assert bool(bad.iloc[0]) and pd.isna(values.iloc[0])
    else:
        assert not bad.iloc[0]
        assert values.iloc[0] == pd.Timestamp(expected)


def test_parsers_map_repeated_values_back_in_order() -> None:
    raw = pd.Series(["2", "x", "2", "", "3", "x"], index=[10, 11, 12, 13, 14, 15], dtype="str")
    values, bad = parse_count(raw)
    assert values.tolist() == [2, pd.NA, 2, pd.NA, 3, pd.NA]
    assert bad.tolist() == [False, True, False, False, False, True]
    assert list(values.index) == [10, 11, 12, 13, 14, 15]


@pytest.mark.parametrize(
    ("raw", "options", "expected"),
    [
        ("United Kingdom", {"slug": True}, "united-kingdom"),
        (" Hong Kong ", {"slug": True}, "hong-kong"),
        ("EIRE", {"slug": True}, "eire"),
        ("1", {"prefix": "W", "pad": 2}, "W01"),
        ("45", {"prefix": "W", "pad": 2}, "W45"),
        ("S7", {"pad": 3}, "S7"),  # only numeric codes are padded
        ("S7", {}, "S7"),
    ],
)
def test_store_codes(raw: str, options: dict[str, object], expected: str) -> None:
    assert store_codes(pd.Series([raw], dtype="str"), **options).iloc[0] == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("a,b,c", ","), ("a;b;c", ";"), ("a\tb\tc", "\t"), ("a|b|c", "|"), ('"x,y";b;c', ";"), ("single", ",")],
)
def test_sniff_delimiter(header: str, expected: str) -> None:
    assert sniff_delimiter(header) == expected


def test_read_export_gives_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('\nid,note\n1,plain\n2,"two\nlines"\n\n3,after blank\n', encoding="utf-8")
    raw = read_export(path)
    assert list(raw.frame.index) == [3, 4, 7]  # leading blank line, header on line 2, a value spanning 2 lines
    assert raw.frame["note"].tolist() == ["plain", "two\nlines", "after blank"]


def test_read_export_tolerates_bom_and_falls_back_to_latin1(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfstore,revenue\nS1,1\n")
    assert list(read_export(bom).frame.columns) == ["store", "revenue"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("store,name\nS1,Caf\u00e9\n".encode("latin-1"))
    raw = read_export(latin)
    assert raw.encoding == "latin-1"
    assert raw.frame["name"].tolist() == ["Caf\u00e9"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", None, "is empty"),
        ("blank.csv", b"\n\n  \n", "is empty"),
        ("header_only.csv", None, "no data rows"),
        ("no_header.csv", None, "has no header"),
        ("ragged.csv", None, "Expected 3 fields in line 3"),
        ("binary.csv", b"PK\x03\x04\x00\x00\x08\x00store,revenue", "binary"),
        ("dupe.csv", b"store,store\nS1,S2\n", "more than once"),
        ("unnamed.csv", b"store,,revenue\nS1,x,1\n", "column 2 of line 1 has no name"),
        ("missing.csv", None, "does not exist"),
    ],
)
def test_whole_file_problems_are_refused(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = DATA / name
    if content is not None:
        path = tmp_path / name
        path.write_bytes(content)
    with pytest.raises(ImportRejectedError, match=message) as caught:
        read_export(path)
    assert caught.value.path == str(path)


def test_explicit_encoding_that_fails_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("store,name\nS1,Caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ImportRejectedError, match="cannot be decoded as utf-8"):
        read_export(path, encoding="utf-8")


COLUMNS = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "Country", "Customer ID"]


def test_resolve_columns_by_mapping_and_by_name() -> None:
    mapping = {"order_id": "InvoiceNo", "sku": "stockcode", "timestamp": "InvoiceDate", "unit_price": "UnitPrice"}
    resolved = resolve_columns("lines", COLUMNS, {**mapping, "store": "Country"}, path=Path("x.csv"))
    assert resolved == {
        "order_id": "InvoiceNo",
        "sku": "StockCode",  # a mapping is matched case-insensitively when unambiguous
        "timestamp": "InvoiceDate",
        "unit_price": "UnitPrice",
        "store": "Country",
        "customer": "Customer ID",  # found by normalised name
        "quantity": "Quantity",
    }


@pytest.mark.parametrize(
    ("kind", "mapping", "default_store", "message"),
    [
        ("lines", {"colour": "Country"}, False, r"unknown field\(s\) \['colour'\].*allowed fields: store, order_id"),
        ("lines", {"order_id": "Invoice"}, False, r"order_id='Invoice': no such column.*'InvoiceNo'"),
        ("lines", {"order_id": "InvoiceNo"}, False, r"required field\(s\) \['store', 'timestamp'"),
        ("lines", {"order_id": "InvoiceNo", "timestamp": "InvoiceDate"}, False, "--store CODE"),
        ("daily", {"date": "InvoiceDate"}, True, "no column for revenue or orders"),
    ],
)
def test_mapping_problems_name_the_field_and_list_the_columns(
    kind: str, mapping: dict[str, str], default_store: bool, message: str
) -> None:
    with pytest.raises(ImportRejectedError, match=message):
        resolve_columns(kind, COLUMNS, mapping, path=Path("x.csv"), has_default_store=default_store)  # type: ignore[arg-type]


def test_parse_mapping() -> None:
    assert parse_mapping(["sku=StockCode", " store = Country "]) == {"sku": "StockCode", "store": "Country"}
    with pytest.raises(ConfigError, match="not field=COLUMN"):
        parse_mapping(["sku"])
    with pytest.raises(ConfigError, match="twice"):
        parse_mapping(["sku=A", "sku=B"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ";;"}, "one character"),
        ({"decimal": "'"}, "expected '.' or ','"),
        ({"grain": "month"}, "expected 'day' or 'week'"),
        ({"currency": "pounds"}, "3-letter"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ImportOptions(**options)  # type: ignore[arg-type]


def test_row_rejects_keep_the_first_problem_per_row() -> None:
    raw = pd.DataFrame({"a": ["1", "x", "y"]}, index=pd.Index([2, 3, 4], name="_row"))
    rejects = RowRejects(raw.index)
    assert rejects.add(raw["a"] != "1", reason="first", column="a", found=raw["a"], expected="1") == 2
    assert rejects.add(raw["a"] == "y", reason="second", column="a", found=raw["a"], expected="1") == 0
    assert rejects.ok.tolist() == [True, False, False]
    assert rejects.counts() == {"first": 2}
    frame = rejects.frame(raw)
    assert frame.to_dict("list") == {
        "a": ["x", "y"],
        "_row": [3, 4],
        "_column": ["a", "a"],
        "_found": ["x", "y"],
        "_expected": ["1", "1"],
        "_reason": ["first", "first"],
    }


@settings(max_examples=60, deadline=None)
@given(
    cents=st.integers(min_value=-(10**11), max_value=10**11),
    symbol=st.sampled_from(["", "$", "€ ", "£", "GBP "]),
    grouped=st.booleans(),
    decimal=st.sampled_from([".", ","]),
)
def test_formatted_amounts_parse_back(cents: int, symbol: str, grouped: bool, decimal: str) -> None:
    text = f"{abs(cents) / 100:,.2f}" if grouped else f"{abs(cents) / 100:.2f}"
    if decimal == ",":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    text = symbol + ("-" if cents < 0 else "") + text
    values, bad = parse_money(pd.Series([text], dtype="str"), decimal=decimal)
    assert not bad.iloc[0], text
    assert values.iloc[0] == pytest.approx(cents / 100, abs=1e-6)
