"""Settings from the environment (12-factor), resolved once into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from report_lib.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///data/warehouse.db"
ENVIRONMENTS = ("dev", "prod", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    """Everything report_lib reads from the environment. Secrets live only in the URLs and are never logged."""

    database_url: str = DEFAULT_DATABASE_URL
    output_dir: Path = Path("reports")
    outbox_dir: Path = Path("outbox")
    parameters_dir: Path = Path("parameters")
    log_dir: Path = Path("logs")
    smtp_url: str | None = None
    public_url: str | None = None  # where output_dir is served, for links in emails
    celery_broker_url: str | None = None
    env: str = "dev"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"REPORT_ENV is {self.env!r}; expected one of {', '.join(ENVIRONMENTS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"REPORT_LOG_LEVEL is {self.log_level!r}; expected one of {', '.join(LOG_LEVELS)}")
        if "://" not in self.database_url:
            raise ConfigError(
                f"REPORT_DATABASE_URL is {self.database_url!r}; expected a SQLAlchemy URL such as "
                f"{DEFAULT_DATABASE_URL} or postgresql+psycopg://user@host:5432/dbname"
            )

    def absolute_database_url(self) -> str:
        """The URL with a relative SQLite path made absolute, so kernels and workers in other folders find it."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            path = self.database_url[len(prefix) :]
            if path and path != ":memory:" and not path.startswith("/"):
                return prefix + str(Path(path).resolve())
        return self.database_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def value(name: str) -> str | None:
            raw = env.get(name, "").strip()
            return raw or None

        return cls(
            database_url=value("REPORT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            output_dir=Path(value("REPORT_OUTPUT_DIR") or "reports"),
            outbox_dir=Path(value("REPORT_OUTBOX_DIR") or "outbox"),
            parameters_dir=Path(value("REPORT_PARAMETERS_DIR") or "parameters"),
            log_dir=Path(value("REPORT_LOG_DIR") or "logs"),
            smtp_url=value("REPORT_SMTP_URL"),
            public_url=value("REPORT_PUBLIC_URL"),
            celery_broker_url=value("REPORT_CELERY_BROKER_URL"),
            env=value("REPORT_ENV") or "dev",
            log_level=(value("REPORT_LOG_LEVEL") or "INFO").upper(),
        )


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped, optional quotes removed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, found {line[:40]!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(dotenv: Path = Path(".env")) -> Settings:
    """Settings from the environment, with a .env file filling in what the environment does not set."""
    environ = {**read_dotenv(dotenv), **os.environ}
    return Settings.from_env(environ)
