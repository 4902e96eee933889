"""Shared fixtures: warehouses on a real SQLite file and on the real PostgreSQL server, the shared data folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
POSTGRES_URL = os.environ.get("REPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _unavailable(service: str, require_var: str, reason: str) -> None:
    if os.environ.get(require_var) == "1":
        pytest.fail(f"{service} is required ({require_var}=1) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable ({reason}); set {require_var}=1 to make this a failure")


@pytest.fixture(scope="session")
def postgres_admin_engine() -> Iterator[Engine]:
    engine = create_warehouse_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any connection failure means "no server here"
        engine.dispose()
        _unavailable("PostgreSQL", "REQUIRE_POSTGRES", f"{POSTGRES_URL}: {type(exc).__name__}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin_engine: Engine) -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema of its own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin_engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with postgres_admin_engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """The same test on a SQLite file and on real PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Engine]:
    """An engine on an empty warehouse with the schema created."""
    engine = create_warehouse_engine(warehouse_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_warehouse(sqlite_url: str) -> Iterator[Engine]:
    engine = create_warehouse_engine(sqlite_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A small generated chain (3 stores × 400 days ending yesterday, ~200k lines) with daily metrics, shared by
    the tests that execute notebooks. Tests may add stores of their own, never change the demo's rows."""
    from report_lib.warehouse.demo import generate_demo
    from report_lib.warehouse.refresh import refresh_daily_metrics

    folder = tmp_path_factory.mktemp("demo-warehouse")
    engine = create_warehouse_engine(f"sqlite:///{folder / 'warehouse.db'}")
    ensure_schema(engine)
    generate_demo(engine, stores=3, days=400, seed=7)
    refresh_daily_metrics(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (the real datasets exist only beside the project checkout)")
    return SHARED_DATA
