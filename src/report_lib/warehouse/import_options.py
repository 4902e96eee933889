"""The options of a CSV import, shared by the reader, the validators, the presets and the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from report_lib.errors import ConfigError

Kind = Literal["lines", "daily"]
Grain = Literal["day", "week"]
WeekDate = Literal["end", "start"]

DELIMITERS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
REJECTS_DIR = Path("rejects")


@dataclass(frozen=True)
class ImportOptions:
    """How to read one CSV export. Defaults suit a plain UTF-8, comma-separated, ISO-dated file.

    Store codes are derived from the file's store values: ``slug_stores`` turns "United Kingdom" into
    "united-kingdom"; otherwise numeric values are zero-padded to ``store_pad`` digits and ``store_prefix`` is
    prepended ("1" -> "W01"). New stores (``create_stores``) are named by ``store_name_template`` ({raw}, {code}).
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    delimiter: str | None = None  # None: sniffed from the header line
    encoding: str | None = None  # None: UTF-8 (BOM tolerated), falling back to latin-1 with a warning
    date_format: str | None = None  # None: ISO 8601
    decimal: str = "."
    default_store: str | None = None  # for files without a store column, or rows with an empty one
    grain: Grain = "day"  # daily imports only
    week_date: WeekDate = "end"  # weekly rows are dated by the week's last day; "start" shifts them by 6 days
    create_stores: bool = False
    currency: str = "USD"  # of stores created by this import
    as_of: dt.date | None = None  # "today" for the future-date check; None: the real today
    return_prefix: str | None = None  # order ids starting with this are returns (quantities made negative)
    reject_zero_price: bool = False
    slug_stores: bool = False
    store_prefix: str = ""
    store_pad: int = 0
    store_name_template: str = "{raw}"
    rejects_path: Path | None = None  # None: rejects/<file stem>.rejects.csv under the current directory

    def __post_init__(self) -> None:
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ConfigError(f"delimiter is {self.delimiter!r}; expected one character such as , ; | or a tab (\\t)")
        if self.decimal not in DECIMALS:
            raise ConfigError(f"decimal is {self.decimal!r}; expected '.' or ','")
        if self.grain not in ("day", "week"):
            raise ConfigError(f"grain is {self.grain!r}; expected 'day' or 'week'")
        if self.week_date not in ("end", "start"):
            raise ConfigError(f"week_date is {self.week_date!r}; expected 'end' or 'start'")
        if len(self.currency) != 3:
            raise ConfigError(f"currency is {self.currency!r}; expected a 3-letter ISO code such as USD or GBP")
        if self.store_pad < 0:
            raise ConfigError(f"store_pad is {self.store_pad}; expected 0 (no padding) or a positive width")

    def today(self) -> dt.date:
        return self.as_of if self.as_of is not None else dt.date.today()

    def rejects_file(self, source: Path) -> Path:
        return self.rejects_path if self.rejects_path is not None else REJECTS_DIR / f"{source.stem}.rejects.csv"


def parse_mapping(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["sku=StockCode", ...]`` as a dict; a pair without "=" or a field mapped twice is a ConfigError."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise ConfigError(f"--map {pair!r} is not field=COLUMN; write e.g. --map order_id=InvoiceNo")
        if name in mapping:
            raise ConfigError(f"--map gives field {name!r} twice ({mapping[name]!r} and {column!r}); keep one")
        mapping[name] = column
    return mapping
