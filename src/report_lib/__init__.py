"""Store Performance Reports: the analyses, the warehouse, the runner and the renderers behind the notebooks."""

from report_lib.config import Settings
from report_lib.errors import (
    ConfigError,
    DataValidationError,
    ImportRejectedError,
    InsufficientDataError,
    NeedsOrderLinesError,
    ReportError,
    ReportNotFoundError,
    WarehouseError,
)

__all__ = [
    "ConfigError",
    "DataValidationError",
    "ImportRejectedError",
    "InsufficientDataError",
    "NeedsOrderLinesError",
    "ReportError",
    "ReportNotFoundError",
    "Settings",
    "WarehouseError",
]
