"""`runner.py import lines|daily FILE`: options reach the importer, the report is printed, exit codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from report_lib.config import Settings
from report_lib.errors import ConfigError
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.schema import daily_metrics, stores

DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    engine = create_warehouse_engine(sqlite_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "S2", "name": "Two"}])
    engine.dispose()
    return Settings(database_url=sqlite_url)


def run(argv: list[str], settings: Settings) -> int:
    from report_lib.cli import build_parser

    args = build_parser().parse_args(argv)
    return int(args.handler(args, settings))


def test_lines_report_counts_reasons_reject_file_and_refresh_hint(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = tmp_path / "out" / "bad.csv"
    argv = ["import", "lines", str(DATA / "lines_bad.csv"), "--as-of", "2024-06-30", "--rejects", str(rejects)]
    assert run(argv, settings) == 0
    out = capsys.readouterr().out
    assert "Imported as batch 1" in out
    assert "rows read 12   loaded 3   rejected 9" in out
    for reason in ("unparseable date", "unknown store", "duplicate line", "future date", "zero quantity"):
        assert f"│ {reason}" in out
    assert f"rejected rows (with line, column, found, expected): {rejects}" in out
    assert rejects.exists()
    assert "runner.py refresh" in out


def test_reimport_is_nothing_to_do_and_exits_0(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["import", "lines", str(DATA / "lines_bad.csv"), "--as-of", "2024-06-30"]
    assert run(argv, settings) == 0
    assert (tmp_path / "rejects" / "lines_bad.rejects.csv").exists()  # the default reject file, under the cwd
    capsys.readouterr()
    assert run(argv, settings) == 0
    out = capsys.readouterr().out
    assert f"{DATA / 'lines_bad.csv'} was already imported as batch 1 on {dt.date.today():%Y-%m-%d}" in out
    assert "nothing to do" in out


def test_everything_rejected_exits_1_with_the_reasons(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["import", "lines", str(DATA / "lines_dollars.csv"), "--store", "S9", "--rejects", str(tmp_path / "r.csv")]
    assert run(argv, settings) == 1
    out = capsys.readouterr().out
    assert "Nothing imported" in out and "│ unknown store" in out and "--create-stores" in out


def test_daily_weekly_options_reach_the_importer(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["import", "daily", str(DATA / "daily_weekly_start.csv"), "--map", "date=week", "--map", "revenue=sales"]
    argv += ["--store", "S2", "--grain", "week", "--week-date", "start", "--as-of", "2024-06-30"]
    assert run(argv, settings) == 0
    assert "rows read 2   loaded 2   rejected 0" in capsys.readouterr().out
    engine = create_warehouse_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(daily_metrics.c.store_code, daily_metrics.c.day, daily_metrics.c.grain)).all()
    engine.dispose()
    assert [(code, str(day)[:10], grain) for code, day, grain in rows] == [
        ("S2", "2024-03-03", "week"),
        ("S2", "2024-03-10", "week"),
    ]


def test_dry_run_writes_nothing(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["import", "daily", str(DATA / "daily_walmart.csv"), "--preset", "walmart", "--dry-run"]
    assert run(argv, settings) == 0
    out = capsys.readouterr().out
    assert "Dry run (nothing written)" in out and "stores would create: 2 (W01, W02)" in out
    engine = create_warehouse_engine(settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(daily_metrics)).all() == []
    engine.dispose()


def test_preset_options_are_overridden_by_flags() -> None:
    from report_lib.cli import build_parser
    from report_lib.cli.imports import build_options

    argv = ["import", "lines", "x.csv", "--preset", "online-retail", "--map", "store=Region", "--delimiter", "tab"]
    options = build_options(build_parser().parse_args(argv), "lines")
    assert options.mapping["store"] == "Region" and options.mapping["order_id"] == "InvoiceNo"
    assert (options.delimiter, options.return_prefix, options.create_stores) == ("\t", "C", True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "lines", "x.csv", "--preset", "walmart"], "is for `import daily`"),
        (["import", "lines", "x.csv", "--as-of", "30/06/2024"], "expected YYYY-MM-DD"),
        (["import", "lines", "x.csv", "--map", "sku"], "not field=COLUMN"),
    ],
)
def test_bad_flags_are_config_errors(argv: list[str], message: str) -> None:
    from report_lib.cli import build_parser
    from report_lib.cli.imports import build_options

    with pytest.raises(ConfigError, match=message):
        build_options(build_parser().parse_args(argv), "lines")


def test_help_shows_examples_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    from report_lib.cli import build_parser

    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["import", "daily", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "--preset walmart" in out and "required: store (or --store), date, and revenue and/or orders" in out
