"""`runner.py status` and `runner.py health` as a user runs them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from report_lib.cli import main
from report_lib.run import ledger


@pytest.fixture
def ledger_with_runs(sqlite_warehouse: Engine, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Engine:
    monkeypatch.setenv("REPORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("REPORT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal's width
    for store, status, error in [("S01", "ok", None), ("S02", "failed", "DataValidationError: no sales")]:
        attempt = ledger.start_attempt(
            sqlite_warehouse, batch="b1", store=store, notebook="kpis", period="2024-W10", parameters={}, attempt=1
        )
        ledger.finish_attempt(sqlite_warehouse, attempt, status=status, error=error, outputs={})
    return sqlite_warehouse


def test_status_lists_runs_and_failures(ledger_with_runs: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "S01" in out and "S02" in out and "no sales" in out
    assert main(["status", "--failed"]) == 0
    out = capsys.readouterr().out
    assert "S02" in out and "S01" not in out


def test_status_prometheus_metrics(ledger_with_runs: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--prometheus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'store_reports_runs_total{status="failed"} 1' in lines
    assert 'store_reports_runs_total{status="ok"} 1' in lines
    [success] = [line for line in lines if line.startswith('store_reports_last_success_timestamp_seconds{store="S01"}')]
    assert abs(float(success.split()[-1]) - dt.datetime.now().timestamp()) < 600
    assert not any('store="S02"' in line for line in lines if "last_success" in line)


def test_health_fails_on_an_unreachable_database_without_leaking_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setenv("REPORT_DATABASE_URL", "postgresql+psycopg://reporter:hunter2-secret@127.0.0.1:1/nowhere")
    monkeypatch.setenv("REPORT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("REPORT_SMTP_URL", raising=False)
    monkeypatch.delenv("REPORT_CELERY_BROKER_URL", raising=False)
    assert main(["health"]) == 1
    out = capsys.readouterr().out
    assert "database" in out and "failed" in out
    assert "hunter2-secret" not in out
    assert "smtp" in out and "skipped" in out
