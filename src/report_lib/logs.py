"""Logging for the command line and the workers: readable lines on stderr, JSON lines in a rotating file.

Secrets (passwords in the configured URLs) are redacted from every record before any handler sees it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from report_lib.config import Settings

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
REDACTED = "***"
QUIET_LOGGERS = ("choreographer", "kaleido", "traitlets", "papermill")  # chatty at INFO about their internals


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_text:  # already formatted (and redacted) by RedactSecrets
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RedactSecrets(logging.Filter):
    """Replaces every known secret in a record's message (args included) and exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        return True


def secrets_of(settings: Settings) -> list[str]:
    """The passwords embedded in the configured URLs."""
    found = []
    for url in (settings.database_url, settings.smtp_url, settings.celery_broker_url):
        if url:
            password = urlsplit(url).password
            if password:
                found.append(password)
    return found


def configure_logging(settings: Settings, *, verbose: bool = False, log_dir: Path | None = None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):  # configured twice in one process (tests): close the old file first
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, settings.log_level))
    redact = RedactSecrets(secrets_of(settings))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    console.addFilter(redact)
    root.addHandler(console)
    folder = log_dir or settings.log_dir
    folder.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        folder / "report.jsonl", maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
    )
    file_handler.setFormatter(JsonFormatter())
    file_handler.addFilter(redact)
    root.addHandler(file_handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
