"""A per-session memo: results that do not change within a dashboard session are computed once.

One dashboard page has one kernel, and one ``SessionCache`` lives in it: picking a store again, or moving a slider
back, shows the stored result instead of reloading data or refitting a forecast. Keys are tuples of plain values
(the function's name and its arguments). Entries are evicted least-recently-used beyond ``max_entries``; failures
are not stored, so a failed computation is tried again on the next request.

DataFrames and Series come back as shallow copies: with pandas' copy-on-write, a caller that modifies what it got
cannot change the stored value.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_MAX_ENTRIES = 256


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class SessionCache:
    """Least-recently-used memo of computed values, keyed by plain hashable tuples."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries is {max_entries}; expected at least 1")
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._max_entries = max_entries
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The stored value of ``key``, or ``compute()`` stored under it (exceptions propagate, nothing stored)."""
        if key in self._entries:
            self._entries.move_to_end(key)
            self.stats.hits += 1
            stored: T = self._entries[key]
            return _detached(stored)
        self.stats.misses += 1
        value = compute()
        self._entries[key] = value
        if len(self._entries) > self._max_entries:
            evicted, _ = self._entries.popitem(last=False)
            log.debug("session cache full: evicted %r", evicted)
        return _detached(value)

    def clear(self) -> None:
        self._entries.clear()


def _detached(value: T) -> T:
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.copy(deep=False)  # type: ignore[return-value]
    return value
