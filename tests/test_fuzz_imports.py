"""Fuzzed CSV imports: every file is loaded exactly as written or refused, never a crash, never half-written.

Two properties, on SQLite and on real PostgreSQL:

- well-formed files written in any dialect (UTF-8, UTF-8 with a BOM, Windows-1252, UTF-16; , ; tab |; minimal or
  full quoting; \\n or \\r\\n) with nasty text (quotes, delimiters, newlines, HTML, SQL, Unicode, 300-character
  names) load every row, and the warehouse holds exactly the values of the file;
- damaged files (truncated, bytes flipped or inserted, binary, empty, a BOM and nothing, a 200,000-character field)
  either load some rows with the rest rejected and counted, or are refused with an ImportRejectedError naming the
  file; the warehouse changes by exactly what the result reports, and by nothing when refused.
"""

from __future__ import annotations

import csv
import io
import string
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from report_lib.errors import ImportRejectedError
from report_lib.warehouse.import_options import DELIMITERS, ImportOptions
from report_lib.warehouse.importers import import_daily, import_lines
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, orders, products, stores

HEADER = ["store", "order_id", "timestamp", "customer", "sku", "product_name", "category", "quantity", "unit_price"]
COUNTED = (stores, products, import_batches, orders, order_lines, daily_metrics)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

NASTY = ["<script>alert(1)</script>", "'; DROP TABLE stores; --", 'say "hi"', "a,b;c|d\te", "line\nbreak", "../../x"]
text_alphabet = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]) | st.sampled_from(
    [*",;|\"'<>&%$€£ ", "\n"]
)
product_names = (
    st.one_of(
        st.sampled_from(NASTY),
        st.text(alphabet=text_alphabet, min_size=1, max_size=40),
        st.text(alphabet=string.ascii_letters, min_size=300, max_size=300),
    )
    .map(str.strip)
    .filter(lambda name: name != "" and name.lower() not in {"na", "n/a", "#n/a", "null", "nan", "none"})
)


@pytest.fixture
def shop(warehouse: Engine) -> Engine:
    with warehouse.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "S2", "name": "Two"}])
    return warehouse


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one()) for table in COUNTED
        }


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[list[list[str]], str, str, str, int]:
    """Rows (unique orders and SKUs), and how to write them: encoding, delimiter, line end, quoting."""
    names = draw(st.lists(product_names, min_size=1, max_size=6))
    tag = "TAG"  # replaced by a fresh id when the file is written: every example's keys are new to the warehouse
    rows = [
        [
            draw(st.sampled_from(["S1", "S2"])),
            f"O-{tag}-{index}",
            f"2024-03-{index % 28 + 1:02d} 10:{index % 60:02d}:00",
            draw(st.sampled_from(["", f"C-{tag}"])),
            f"SKU-{tag}-{index}",
            name,
            draw(st.sampled_from(["Food", "Home & Garden", "Jouets é"])),
            str(draw(st.integers(min_value=-3, max_value=50).filter(lambda q: q != 0))),
            f"{draw(st.integers(min_value=1, max_value=99_999)) / 100:.2f}",
        ]
        for index, name in enumerate(names)
    ]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return (
        rows,
        encoding,
        draw(st.sampled_from(DELIMITERS)),
        draw(st.sampled_from(["\n", "\r\n"])),
        draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )


def _write(rows: list[list[str]], *, delimiter: str, line_end: str, quoting: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end, quoting=quoting)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


@SETTINGS
@given(case=well_formed())
def test_well_formed_files_in_any_dialect_load_exactly(shop: Engine, tmp_path: Path, case: Any) -> None:
    template, encoding, delimiter, line_end, quoting = case
    tag = uuid.uuid4().hex[:8]
    rows = [
        [value.replace("TAG", tag) if index in (1, 3, 4) else value for index, value in enumerate(row)]
        for row in template
    ]
    text = _write(rows, delimiter=delimiter, line_end=line_end, quoting=quoting)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)  # Windows-1252 cannot hold every character; such a file cannot exist
    path = tmp_path / f"lines-{rows[0][1]}.csv"
    path.write_bytes(data)
    options = ImportOptions(encoding="utf-16" if encoding == "utf-16" else None, rejects_path=tmp_path / "r.csv")
    result = import_lines(shop, path, options=options)
    assert (result.rows_loaded, result.rejected) == (len(rows), {}), result
    assert result.delimiter == delimiter
    with shop.connect() as conn:
        loaded = conn.execute(
            select(order_lines.c.order_id, order_lines.c.quantity, order_lines.c.unit_price, products.c.name)
            .join(products, products.c.sku == order_lines.c.sku)
            .where(order_lines.c.batch_id == result.batch_id)
            .order_by(order_lines.c.order_id)
        ).all()
    expected = sorted((row[1], int(row[7]), float(row[8]), row[5]) for row in rows)
    assert sorted(tuple(row) for row in loaded) == expected


def _damage(data: bytes, how: str, where: float, junk: bytes) -> bytes:
    cut = int(len(data) * where)
    return {
        "truncate": data[:cut],
        "insert": data[:cut] + junk + data[cut:],
        "overwrite": data[:cut] + junk + data[cut + len(junk) :],
        "binary": junk * 50,
        "empty": b"",
        "bom-only": b"\xef\xbb\xbf",
        "unbalanced-quote": data[:cut] + b'"' + data[cut:],
        "long-field": data.replace(b"Apple", b"A" * 200_000, 1),
        "extra-column": data.replace(b"\n", b",surplus\n", 2),
    }[how]


BASE_LINES = _write(
    [
        ["S1", "O1", "2024-03-01 10:00:00", "C1", "A", "Apple", "Fruit", "2", "1.50"],
        ["S1", "O1", "2024-03-01 10:05:00", "C1", "B", "Bread", "Bakery", "1", "2.00"],
        ["S2", "O2", "2024-03-02 11:30:00", "", "A", "Apple", "Fruit", "-1", "1.50"],
        ["S2", "O3", "2024-03-02 12:00:00", "C2", "C", "Cheese", "Dairy", "3", "4.00"],
    ],
    delimiter=",",
    line_end="\n",
    quoting=csv.QUOTE_MINIMAL,
).encode()
BASE_DAILY = b"store,date,revenue,orders\nS1,2024-03-01,100.50,10\nS1,2024-03-02,200,20\nS2,2024-03-01,50,5\n"
damages = st.tuples(
    st.sampled_from(
        [
            "truncate",
            "insert",
            "overwrite",
            "binary",
            "empty",
            "bom-only",
            "unbalanced-quote",
            "long-field",
            "extra-column",
        ]
    ),
    st.floats(min_value=0.0, max_value=1.0),
    st.binary(min_size=1, max_size=12),
)


@SETTINGS
@given(damage=damages, kind=st.sampled_from(["lines", "daily"]))
def test_damaged_files_are_loaded_in_part_or_refused_and_never_half_written(
    shop: Engine, tmp_path: Path, damage: tuple[str, float, bytes], kind: str
) -> None:
    how, where, junk = damage
    data = _damage(BASE_LINES if kind == "lines" else BASE_DAILY, how, where, junk)
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(data)
    before = _counts(shop)
    importer = import_lines if kind == "lines" else import_daily
    try:
        result = importer(shop, path, options=ImportOptions(rejects_path=tmp_path / "rejects.csv"))
    except ImportRejectedError as exc:
        assert path.name in str(exc)
        assert _counts(shop) == before  # refused: nothing written
        return
    after = _counts(shop)
    if result.already_imported:  # the same bytes as an earlier example: skipped, nothing written
        assert after == before and result.rows_loaded == 0
        return
    assert result.rows_loaded + result.rows_rejected == result.rows_read
    table = "order_lines" if kind == "lines" else "daily_metrics"
    assert after[table] - before[table] == result.rows_loaded
    assert after["import_batches"] - before["import_batches"] == 1
    if result.rows_rejected:
        assert result.rejects_file is not None and result.rejects_file.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"\x00\x01\x02PK\x03\x04" * 100, "binary"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary"),
        (b"store,date,revenue\n", "no data rows"),
        (b"1,2024-03-01,100\n2,2024-03-01,50\n", "no header"),
        (b"store,store,revenue\nS1,2024-03-01,1\n", "more than once"),
        (b"store,date,revenue\nS1,2024-03-01,1,extra,fields\n", "not valid CSV"),
    ],
    ids=["zero-bytes", "bom-only", "zip", "png", "header-only", "no-header", "duplicate-column", "ragged"],
)
def test_whole_file_refusals_name_the_file_and_the_problem(
    shop: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    before = _counts(shop)
    with pytest.raises(ImportRejectedError, match=message) as caught:
        import_daily(shop, path, options=ImportOptions(rejects_path=tmp_path / "rejects.csv"))
    assert str(path) in str(caught.value)
    assert _counts(shop) == before


def test_windows_1252_exports_keep_their_euro_signs_and_quotes(shop: Engine, tmp_path: Path) -> None:
    """Excel's "CSV" on Windows is cp1252: € and curly quotes are bytes 0x80-0x9F, which latin-1 turns into
    invisible control characters."""
    name = "“Crème brûlée” – 5 €"
    path = tmp_path / "excel.csv"
    path.write_bytes(
        _write(
            [["S1", "W1", "2024-03-01 09:00:00", "", "CB", name, "Desserts", "1", "5.00"]],
            delimiter=";",
            line_end="\r\n",
            quoting=csv.QUOTE_MINIMAL,
        ).encode("cp1252")
    )
    result = import_lines(shop, path, options=ImportOptions(rejects_path=tmp_path / "r.csv"))
    assert result.rows_loaded == 1 and result.encoding == "cp1252"
    with shop.connect() as conn:
        assert conn.execute(select(products.c.name).where(products.c.sku == "CB")).scalar_one() == name
