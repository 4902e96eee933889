"""Typed parameters: what a notebook receives, and the settings in parameters/*.yaml they come from.

Everything is validated before any kernel starts. Precedence: built-in defaults < parameters/defaults.yaml <
per-store settings (parameters/stores.yaml) < the command line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from report_lib.errors import ConfigError

Format = Literal["html", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "pdf")


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    anomaly_z: float = Field(3.5, gt=0, le=20, description="robust z-score above which a day is flagged")
    low_cover_days: float = Field(7, gt=0, le=365, description="days of stock cover below which to reorder")
    min_support: float = Field(0.005, gt=0, lt=1, description="co-purchase pairs rarer than this are ignored")
    forecast_horizon: int = Field(28, ge=1, le=366, description="days ahead to forecast")


class ThresholdOverrides(BaseModel):
    """Some of the thresholds, for one store; the rest come from defaults.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anomaly_z: float | None = Field(None, gt=0, le=20)
    low_cover_days: float | None = Field(None, gt=0, le=365)
    min_support: float | None = Field(None, gt=0, lt=1)
    forecast_horizon: int | None = Field(None, ge=1, le=366)

    def over(self, base: Thresholds) -> Thresholds:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class StoreSettings(BaseModel):
    """Per-store overrides; anything left out comes from the warehouse's stores table or the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    managers: list[str] | None = None
    timezone: str | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)
    thresholds: ThresholdOverrides = ThresholdOverrides()


class RegionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    managers: list[str] = Field(default_factory=list)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str = "last-week"
    comparison: Literal["previous", "last_year"] = "previous"
    formats: tuple[Format, ...] = FORMATS
    sender: str = "Store reports <reports@example.com>"
    thresholds: Thresholds = Thresholds()
    retries: int = Field(2, ge=0, le=10)
    execution_timeout: int = Field(600, ge=10, le=86_400, description="seconds a notebook may run")


class ParameterFiles(BaseModel):
    """The contents of parameters/: defaults.yaml and stores.yaml (stores and regions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Defaults = Defaults()
    stores: dict[str, StoreSettings] = Field(default_factory=dict)
    regions: dict[str, RegionSettings] = Field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> ParameterFiles:
        defaults = _read_yaml(folder / "defaults.yaml")
        stores_file = _read_yaml(folder / "stores.yaml")
        try:
            return cls(
                defaults=Defaults(**defaults),
                stores=stores_file.get("stores") or {},
                regions=stores_file.get("regions") or {},
            )
        except ValidationError as exc:
            raise ConfigError(f"Invalid settings in {folder}: {_explain(exc)}") from exc


class NotebookParameters(BaseModel):
    """Exactly what papermill injects into a notebook: plain JSON values, no secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = Field(min_length=1, max_length=64)
    store_name: str = Field(min_length=1, max_length=200)
    currency: str = Field("USD", min_length=3, max_length=3)
    period_start: dt.date
    period_end: dt.date
    period_label: str = Field(min_length=1, max_length=60)
    comparison: Literal["previous", "last_year"] = "previous"
    anomaly_z: float = Field(3.5, gt=0, le=20)
    low_cover_days: float = Field(7, gt=0, le=365)
    min_support: float = Field(0.005, gt=0, lt=1)
    forecast_horizon: int = Field(28, ge=1, le=366)

    @field_validator("store")
    @classmethod
    def _plain_code(cls, value: str) -> str:
        if any(ch in value for ch in "/\\\0\n\r") or value in {".", ".."}:
            raise ValueError("a store code may not contain path separators, NUL or newlines")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> NotebookParameters:
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start {self.period_start}")
        return self

    def for_papermill(self) -> dict[str, Any]:
        """JSON-able values (dates as ISO strings) as papermill injects them."""
        return self.model_dump(mode="json")


def validate_notebook_parameters(values: dict[str, Any]) -> NotebookParameters:
    try:
        return NotebookParameters(**values)
    except ValidationError as exc:
        raise ConfigError(f"Invalid notebook parameters: {_explain(exc)}") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r}); "
            "expected a YAML file saved as UTF-8: re-save it as UTF-8 in your editor."
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of names to values, found {type(loaded).__name__}")
    return loaded


def _explain(exc: ValidationError) -> str:
    """One line per problem: where, what was found, what is allowed."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        found = error.get("input")
        shown = f" (found {found!r})" if not isinstance(found, dict) else ""
        parts.append(f"{where}: {error['msg']}{shown}")
    return "; ".join(parts)
