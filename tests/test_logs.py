import json
import logging
from pathlib import Path

import pytest

from report_lib.config import Settings
from report_lib.logs import configure_logging, secrets_of


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_log_lines_with_secrets_redacted(tmp_path: Path, restore_logging: object) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://reporter:db-Secret-1@db:5432/shop",
        smtp_url="smtp://mailer:smtp-Secret-2@mail:587",
    )
    assert secrets_of(settings) == ["db-Secret-1", "smtp-Secret-2"]
    configure_logging(settings, log_dir=tmp_path)
    log = logging.getLogger("report_lib.test")
    log.warning("connecting with %s", settings.database_url)
    try:
        raise RuntimeError("login failed for smtp://mailer:smtp-Secret-2@mail:587")
    except RuntimeError:
        log.exception("send failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert [entry["level"] for entry in lines] == ["WARNING", "ERROR"]
    assert lines[0]["message"] == "connecting with postgresql+psycopg://reporter:***@db:5432/shop"
    text = (tmp_path / "report.jsonl").read_text()
    assert "Secret" not in text
    assert "RuntimeError: login failed for smtp://mailer:***@mail:587" in lines[1]["exception"]
