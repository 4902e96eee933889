"""Row-level rejections: the first problem found on each row, with the row, the column, what was found and expected.

A rejected row never stops an import; the reject file keeps the row's original columns plus ``_row`` (line in the
file), ``_column``, ``_found``, ``_expected`` and ``_reason`` so it can be fixed and imported again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# The reasons, as written to the reject file and counted in the report.
MISSING = "missing required value"
BAD_DATE = "unparseable date"
BAD_MONEY = "non-numeric money"
BAD_QUANTITY = "non-numeric quantity"
BAD_COUNT = "non-numeric count"
NEGATIVE_PRICE = "negative price"
NEGATIVE_AMOUNT = "negative amount"
ZERO_QUANTITY = "zero quantity"
ZERO_PRICE = "zero unit price (free or adjustment line)"
FUTURE_DATE = "future date"
TOO_LONG = "value too long"
BAD_STORE_CODE = "unusable store code"
DUPLICATE_LINE = "duplicate line"
CONFLICTING_ROW = "conflicting row for the same store and day"
UNKNOWN_STORE = "unknown store"
ALREADY_LOADED = "already in warehouse"

REJECT_COLUMNS = ("_row", "_column", "_found", "_expected", "_reason")


class RowRejects:
    """Collects the first problem of each row of a raw frame (index = line numbers)."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        size = len(index)
        self._reason = np.full(size, None, dtype=object)
        self._column = np.full(size, None, dtype=object)
        self._found = np.full(size, None, dtype=object)
        self._expected = np.full(size, None, dtype=object)

    @property
    def ok(self) -> pd.Series:
        """True for rows not rejected so far."""
        return pd.Series(pd.isna(self._reason), index=self.index)

    def add(
        self,
        mask: pd.Series,
        *,
        reason: str,
        column: str,
        found: pd.Series | str,
        expected: str,
    ) -> int:
        """Reject the rows in ``mask`` not rejected yet; returns how many were newly rejected."""
        fresh = mask.fillna(False).to_numpy(dtype=bool) & pd.isna(self._reason)
        count = int(fresh.sum())
        if count:
            self._reason[fresh] = reason
            self._column[fresh] = column
            self._expected[fresh] = expected
            found_values = found if isinstance(found, str) else found.astype("object").to_numpy()[fresh]
            self._found[fresh] = found_values
        return count

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        reasons = pd.Series(self._reason, dtype="object").dropna()
        return {str(reason): int(count) for reason, count in reasons.value_counts().items()}

    def frame(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The rejected rows: the file's original columns, then _row, _column, _found, _expected, _reason."""
        rejected = ~pd.isna(self._reason)
        earlier = [name for name in REJECT_COLUMNS if name in raw.columns]  # re-importing a reject file
        out = raw.loc[rejected].drop(columns=earlier).reset_index(drop=True)
        extra = pd.DataFrame(
            {
                "_row": self.index.to_numpy()[rejected],
                "_column": self._column[rejected],
                "_found": self._found[rejected],
                "_expected": self._expected[rejected],
                "_reason": self._reason[rejected],
            }
        )
        return pd.concat([out, extra], axis=1)


def write_rejects(rejects: pd.DataFrame, path: Path) -> Path:
    """Write the reject rows as UTF-8 CSV (folders created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rejects.to_csv(path, index=False, encoding="utf-8")
    log.info("wrote %d rejected rows to %s", len(rejects), path)
    return path
