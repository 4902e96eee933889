import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from report_lib.config import Settings
from report_lib.errors import ConfigError, WarehouseError
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema, normalise_url
from report_lib.warehouse.schema import SCHEMA_VERSION, schema_version, stores


def test_ensure_schema_twice_is_safe(warehouse: Engine) -> None:
    assert ensure_schema(warehouse) == SCHEMA_VERSION
    with warehouse.connect() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
    assert versions == [SCHEMA_VERSION]


def test_newer_schema_is_refused(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 1, applied_at=dt.datetime.now()))
    with pytest.raises(WarehouseError, match="newer than this code"):
        ensure_schema(warehouse)


def test_sqlite_uses_wal(sqlite_warehouse: Engine) -> None:
    with sqlite_warehouse.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_insert_frame_round_trips_values(warehouse: Engine) -> None:
    frame = pd.DataFrame(
        {
            "code": ["A", "B"],
            "name": ["Alpha", "Beta"],
            "region": ["North", "South"],
            "opened_on": ["2020-01-02", None],
            "manager_emails": [["a@example.com"], []],
        }
    )
    with warehouse.begin() as conn:
        assert insert_frame(conn, stores, frame) == 2
        rows = conn.execute(select(stores.c.code, stores.c.opened_on, stores.c.manager_emails).order_by("code")).all()
    assert rows == [("A", dt.date(2020, 1, 2), ["a@example.com"]), ("B", None, [])]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        normalise_url(url)


def test_unreachable_database_says_where() -> None:
    engine = create_warehouse_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(WarehouseError, match="Check REPORT_DATABASE_URL") as caught:
        ensure_schema(engine)
    assert "secret" not in str(caught.value)


def test_settings_from_env_defaults_and_validation() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///data/warehouse.db"
    assert str(settings.outbox_dir) == "outbox"
    with pytest.raises(ConfigError, match="REPORT_ENV"):
        Settings.from_env({"REPORT_ENV": "staging"})


def test_dotenv_fills_in_but_environment_wins(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_lib.config import load_settings

    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nREPORT_OUTBOX_DIR='mail/out'\nexport REPORT_ENV=prod\nREPORT_OUTPUT_DIR=from-file\n")
    monkeypatch.setenv("REPORT_OUTPUT_DIR", "from-env")
    monkeypatch.delenv("REPORT_OUTBOX_DIR", raising=False)
    monkeypatch.delenv("REPORT_ENV", raising=False)
    settings = load_settings(dotenv)
    assert (str(settings.outbox_dir), settings.env, str(settings.output_dir)) == ("mail/out", "prod", "from-env")
    dotenv.write_text("not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        load_settings(dotenv)


INTERNAL_VARIABLES = {"REPORT_DASHBOARD_USER"}  # set by the dashboard server for each kernel, not by a user


def test_every_setting_the_code_reads_is_documented() -> None:
    root = Path(__file__).resolve().parent.parent
    code = "\n".join(path.read_text(encoding="utf-8") for path in (root / "src").rglob("*.py"))
    read = set(re.findall(r"\bREPORT_[A-Z_]*[A-Z]\b", code)) - INTERNAL_VARIABLES
    documented = (root / ".env.example").read_text(encoding="utf-8") + (root / "docs/celery.md").read_text("utf-8")
    assert len(read) > 15 and sorted(name for name in read if name not in documented) == []
