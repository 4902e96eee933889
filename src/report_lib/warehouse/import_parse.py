"""Vectorised parsers from raw CSV strings to typed values, each returning the values and a "could not parse" mask.

Missing values (empty, NA, NULL, ...) are never "bad": they come back as NA with a False mask, and the caller
decides whether the field is required. Exports repeat values a lot (stores, SKUs, prices, dates), so each parser
works on the distinct values only and maps the results back (pandas string methods are Python loops here).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

NULL_TOKENS = frozenset({"", "na", "n/a", "#n/a", "null", "nan", "none"})
CURRENCY_PATTERN = r"[$€£¥₹]|\b(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|INR)\b"
SPACES_PATTERN = r"[\s\u00a0\u202f']"
_GROUPED = {
    ".": r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?",
    ",": r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d*)?",
}
_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def clean_text(series: pd.Series) -> pd.Series:
    """Stripped strings, with the usual spellings of "missing" turned into NA."""
    return _per_distinct(series, _clean_text)


def parse_money(series: pd.Series, *, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Amounts like "$1,234.50", "€ 12,50" (decimal ","), "(3.00)" (negative) as floats; mask of unparseable."""
    return _per_distinct_pair(series, lambda distinct: _parse_money(distinct, decimal=decimal))


def parse_count(series: pd.Series, *, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Whole numbers ("12", "1,200", "-3", "4.0") as nullable Int64; "1.5" or "abc" are unparseable."""
    return _per_distinct_pair(series, lambda distinct: _parse_count(distinct, decimal=decimal))


def parse_dates(series: pd.Series, *, date_format: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Timestamps (wall-clock, any UTC offset dropped) from ISO 8601 or ``date_format``; mask of unparseable."""
    return _per_distinct_pair(series, lambda distinct: _parse_dates(distinct, date_format=date_format))


def _per_distinct(series: pd.Series, parse: Callable[[pd.Series], pd.Series]) -> pd.Series:
    codes, distinct = pd.factorize(series, use_na_sentinel=False)
    parsed = parse(pd.Series(distinct))
    return pd.Series(parsed.array.take(codes), index=series.index, dtype=parsed.dtype)


def _per_distinct_pair(
    series: pd.Series, parse: Callable[[pd.Series], tuple[pd.Series, pd.Series]]
) -> tuple[pd.Series, pd.Series]:
    codes, distinct = pd.factorize(series, use_na_sentinel=False)
    values, bad = parse(pd.Series(distinct))
    return (
        pd.Series(values.array.take(codes), index=series.index, dtype=values.dtype),
        pd.Series(bad.to_numpy(dtype=bool)[codes], index=series.index),
    )


def _clean_text(series: pd.Series) -> pd.Series:
    stripped = series.astype("str").str.strip()
    return stripped.mask(stripped.str.lower().isin(NULL_TOKENS))


def _parse_money(series: pd.Series, *, decimal: str) -> tuple[pd.Series, pd.Series]:
    text = _clean_text(series)
    without_symbols = text.str.replace(CURRENCY_PATTERN, "", regex=True)
    return _parse_number(text, without_symbols, decimal=decimal)


def _parse_count(series: pd.Series, *, decimal: str) -> tuple[pd.Series, pd.Series]:
    text = _clean_text(series)
    values, bad = _parse_number(text, text, decimal=decimal)
    fractional = values.notna() & (values != values.round())
    whole = values.mask(fractional).round().astype("Int64")
    return whole, bad | fractional


def _parse_dates(series: pd.Series, *, date_format: str | None) -> tuple[pd.Series, pd.Series]:
    text = _clean_text(series)
    if date_format is None:
        text = text.str.replace(_TZ_SUFFIX, "", regex=True)
    parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    parsed = parsed.astype("datetime64[us]")
    return parsed, text.notna() & parsed.isna()


def store_codes(raw: pd.Series, *, slug: bool = False, prefix: str = "", pad: int = 0) -> pd.Series:
    """Store codes from the file's store values: slugs ("United Kingdom" -> "united-kingdom") or prefix+padding."""
    return _per_distinct(raw, lambda distinct: _store_codes(distinct, slug=slug, prefix=prefix, pad=pad))


def _store_codes(raw: pd.Series, *, slug: bool, prefix: str, pad: int) -> pd.Series:
    text = _clean_text(raw)
    if slug:
        return text.str.lower().str.replace(r"[^0-9a-z]+", "-", regex=True).str.strip("-")
    if pad > 0:
        numeric = text.str.fullmatch(r"\d+").fillna(False).astype(bool)
        text = text.where(~numeric, text.str.zfill(pad))
    return (prefix + text) if prefix else text


def _parse_number(text: pd.Series, candidate: pd.Series, *, decimal: str) -> tuple[pd.Series, pd.Series]:
    compact = candidate.str.replace(SPACES_PATTERN, "", regex=True)
    negative = compact.str.fullmatch(r"\(.*\)").fillna(False).astype(bool)
    compact = compact.where(~negative, compact.str.slice(1, -1))
    grouped = compact.str.fullmatch(_GROUPED[decimal]).fillna(False).astype(bool)
    thousands = "," if decimal == "." else "."
    compact = compact.where(~grouped, compact.str.replace(thousands, "", regex=False))
    stray = compact.str.contains(thousands, regex=False).fillna(False).astype(bool)
    if decimal == ",":
        compact = compact.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(compact.mask(stray), errors="coerce").astype("float64")
    numbers = numbers.where(np.isfinite(numbers))
    numbers = numbers.where(~negative, -numbers)
    return numbers, text.notna() & numbers.isna()
