"""Row checks shared by both import kinds: required values, parse failures, dates, lengths, duplicates, stores."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from report_lib.warehouse import import_rejects as reasons
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.import_parse import clean_text, store_codes
from report_lib.warehouse.import_rejects import RowRejects

KEY_MAX_LENGTH = 64  # String(64) keys in the schema: store codes, order ids, SKUs, customer ids
DEFAULT_STORE_COLUMN = "(--store)"


def column_or_empty(raw: pd.DataFrame, columns: dict[str, str], field: str) -> pd.Series:
    """The raw strings of ``field``'s column, or empty strings when the field is not in the file."""
    if field in columns:
        return raw[columns[field]]
    return pd.Series("", index=raw.index, dtype="str")


def resolve_stores(raw: pd.DataFrame, columns: dict[str, str], options: ImportOptions) -> pd.DataFrame:
    """Per row: ``store_code`` (derived from the file, or the default store) and ``store_raw`` (the file's value)."""
    store_raw = clean_text(column_or_empty(raw, columns, "store"))
    codes = store_codes(store_raw, slug=options.slug_stores, prefix=options.store_prefix, pad=options.store_pad)
    if options.default_store is not None:
        codes = codes.fillna(options.default_store)
        store_raw = store_raw.fillna(options.default_store)
    return pd.DataFrame({"store_code": codes, "store_raw": store_raw}, index=raw.index)


def store_column_name(columns: dict[str, str]) -> str:
    return columns.get("store", DEFAULT_STORE_COLUMN)


def check_missing(rejects: RowRejects, missing: pd.Series, *, column: str, what: str) -> None:
    """Reject rows where ``missing`` is True (a required value is empty)."""
    rejects.add(missing, reason=reasons.MISSING, column=column, found="(empty)", expected=f"a value: {what}")


def check_store_code(rejects: RowRejects, codes: pd.Series, *, column: str) -> None:
    """Store codes become folder names under reports/: no path separators, control characters, '.' or '..'."""
    separators = codes.str.contains(r"[/\\\x00-\x1f\x7f]", regex=True).fillna(False).astype(bool)
    unusable = separators | codes.isin([".", ".."])
    rejects.add(
        unusable,
        reason=reasons.BAD_STORE_CODE,
        column=column,
        found=codes,
        expected="a store code without / \\ or control characters, and not '.' or '..'",
    )


def check_too_long(rejects: RowRejects, values: pd.Series, *, column: str) -> None:
    too_long = values.str.len() > KEY_MAX_LENGTH
    rejects.add(
        too_long,
        reason=reasons.TOO_LONG,
        column=column,
        found=values,
        expected=f"at most {KEY_MAX_LENGTH} characters",
    )


def check_future(rejects: RowRejects, days: pd.Series, found: pd.Series, *, column: str, as_of: dt.date) -> None:
    future = days > pd.Timestamp(as_of)
    rejects.add(
        future,
        reason=reasons.FUTURE_DATE,
        column=column,
        found=found,
        expected=f"a date on or before {as_of.isoformat()} (pass --as-of if 'today' should be another day)",
    )


def check_duplicates(rejects: RowRejects, raw: pd.DataFrame) -> None:
    """Exact repeats of an earlier line of the file (all columns equal): the later ones are rejected."""
    involved = raw.loc[raw.duplicated(keep=False)]  # one pass over the file; then only the few repeated rows
    if involved.empty:
        return
    first: dict[tuple[object, ...], int] = {}
    first_lines = [
        first.setdefault(values, int(line))
        for line, values in zip(involved.index, involved.itertuples(index=False, name=None), strict=True)
    ]
    first_line = pd.Series(first_lines, index=involved.index, dtype="int64")
    repeated = first_line != involved.index.to_series()
    found = pd.Series("", index=raw.index, dtype="str")
    found[first_line.index] = "same as line " + first_line.astype("str")
    rejects.add(
        repeated.reindex(raw.index, fill_value=False),
        reason=reasons.DUPLICATE_LINE,
        column="(all columns)",
        found=found,
        expected="each line once; remove the repeated line if it is a copy",
    )


def check_stores(rejects: RowRejects, rows: pd.DataFrame, known: set[str], *, column: str, create: bool) -> None:
    """Store codes not in the warehouse are rejected unless new stores may be created."""
    if create:
        return
    unknown = rows["store_code"].notna() & ~rows["store_code"].isin(known)
    sample = ", ".join(sorted(known)[:10]) or "(none yet)"
    rejects.add(
        unknown,
        reason=reasons.UNKNOWN_STORE,
        column=column,
        found=rows["store_code"],
        expected=f"a store code already in the warehouse ({sample}); or import with --create-stores",
    )


def new_stores(rows: pd.DataFrame, known: set[str], options: ImportOptions) -> pd.DataFrame:
    """stores rows for the codes of ``rows`` not yet in the warehouse (named from the file's values)."""
    fresh = rows.loc[~rows["store_code"].isin(known), ["store_code", "store_raw"]]
    first = fresh.drop_duplicates("store_code").sort_values("store_code")
    names = [
        options.store_name_template.format(raw=raw, code=code)[:200]
        for code, raw in zip(first["store_code"], first["store_raw"], strict=True)
    ]
    return pd.DataFrame({"code": first["store_code"].to_numpy(), "name": names, "currency": options.currency})
