"""The errors of report_lib: one base class, small subclasses that also inherit the matching builtin.

Every message says what happened, what was expected and how to fix it. Structured fields carry the same facts for
code that wants to react (the CLI, the runner's ledger, tests).
"""

from __future__ import annotations

from collections.abc import Iterable


class ReportError(Exception):
    """Base of every error raised on purpose by report_lib.

    Picklable with its fields (a worker process or a Celery task sends it back): pickle would call ``__init__`` with
    the message alone, which fails for subclasses with keyword-only fields and broke the whole process pool.
    """

    def __reduce__(self) -> tuple[object, ...]:
        state = dict(vars(self))
        if isinstance(self, OSError):
            state["errno"] = self.errno  # a slot of OSError, not in __dict__
        return (_rebuild, (type(self), self.args, state))


def _rebuild(cls: type[ReportError], args: tuple[object, ...], state: dict[str, object]) -> ReportError:
    """Unpickle an error without calling its ``__init__``: the message and the fields as they were."""
    error = cls.__new__(cls, *args)
    error.args = args
    for name, value in state.items():
        setattr(error, name, value)
    return error


class ConfigError(ReportError, ValueError):
    """A setting, parameter or command-line value is missing or wrong."""


class DataValidationError(ReportError, ValueError):
    """A DataFrame or file does not have the shape an analysis or importer needs."""

    def __init__(
        self,
        message: str,
        *,
        missing_columns: Iterable[str] = (),
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing_columns = tuple(missing_columns)
        self.details = dict(details or {})


class InsufficientDataError(DataValidationError):
    """There is data, but too little for the requested analysis (too short a history, one customer...)."""


class NeedsOrderLinesError(InsufficientDataError):
    """The analysis needs order lines, but the store has only aggregate totals (e.g. an imported weekly file)."""


class WarehouseError(ReportError, RuntimeError):
    """The warehouse cannot be reached, or its schema is not the one this code expects."""


class ImportRejectedError(ReportError, ValueError):
    """A whole import was refused (empty or binary file, unknown mapping column); nothing was written."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ReportNotFoundError(ReportError, KeyError):
    """A registry lookup (analysis, backend, output format) found no entry of that name."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"No {kind} named {name!r}; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def require_columns(columns: Iterable[str], required: Iterable[str], *, what: str = "DataFrame") -> None:
    """Raise DataValidationError naming every required column missing from ``columns``."""
    present = set(columns)
    missing = [name for name in required if name not in present]
    if missing:
        raise DataValidationError(
            f"{what} is missing columns {missing}; it has {sorted(present)}. "
            "Pass the right column names as keyword arguments (e.g. date_col=...) or rename the columns.",
            missing_columns=missing,
        )


class RenderError(ReportError, RuntimeError):
    """A report could not be rendered (HTML template, PDF browser, chart image)."""


class BrowserNotFoundError(RenderError):
    """No Chromium to print PDFs or draw chart images; callers skip the PDF with this message."""


class DeliveryError(ReportError, RuntimeError):
    """An email could not be sent or written to the outbox. Messages never include SMTP credentials."""

    def __init__(
        self,
        message: str,
        *,
        message_id: str | None = None,
        recipients: Iterable[str] = (),
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message_id = message_id
        self.recipients = tuple(recipients)
        self.maybe_sent = maybe_sent  # the server had the message when the connection failed: a retry may duplicate


class AccessDeniedError(ReportError, PermissionError):
    """A signed-in dashboard user asked for a store outside the stores they may see (``parameters/users.yaml``)."""

    def __init__(self, message: str, *, user: str, stores: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.user = user
        self.stores = tuple(stores)


class OutputWriteError(ReportError, OSError):
    """A report, page or email could not be written (disk full, no permission); any older file is left untouched."""

    def __init__(self, message: str, *, path: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno  # OSError's own field, so `except OSError` callers can still test e.g. errno.ENOSPC
