"""Reading a CSV export into a frame of raw strings, refusing files that are not CSV text.

Every value stays a string here (nothing is guessed); the frame's index is the 1-based line number of each row in
the file (the header is line 1), so rejects can point at the line a person sees in an editor.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from report_lib.errors import ImportRejectedError
from report_lib.warehouse.import_options import DELIMITERS

log = logging.getLogger(__name__)

BINARY_SAMPLE_BYTES = 65_536
MAX_CONTROL_SHARE = 0.01
_DATA_LIKE = re.compile(r"[+-]?[\d.,:/ -]+")
_WINDOWS_ONLY = re.compile(rb"[\x80-\x9f]")


@dataclass(frozen=True)
class RawExport:
    """A CSV file as read: strings only, index = line number in the file."""

    path: Path
    frame: pd.DataFrame
    sha256: str
    encoding: str
    delimiter: str


def read_export(path: Path, *, delimiter: str | None = None, encoding: str | None = None) -> RawExport:
    """Read ``path`` as CSV text with a header line; raises ImportRejectedError for anything else."""
    data = _read_bytes(path)
    text, used_encoding = _decode(path, data, encoding or _bom_encoding(data))
    if not text.strip():  # a byte-order mark and nothing else
        _refuse_empty(path)
    _refuse_binary(path, text)
    header_line = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    used_delimiter = delimiter if delimiter is not None else sniff_delimiter(header_line)
    header = next(csv.reader([header_line], delimiter=used_delimiter))
    _check_header(path, header, used_delimiter)
    frame = _parse(path, text, used_delimiter)
    log.debug("read %s: %d rows, encoding %s, delimiter %r", path, len(frame), used_encoding, used_delimiter)
    return RawExport(path, frame, hashlib.sha256(data).hexdigest(), used_encoding, used_delimiter)


def sniff_delimiter(header_line: str) -> str:
    """The most frequent of , ; tab | outside quotes in the header line (',' when none occurs)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {candidate: unquoted.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] > 0 else ","


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImportRejectedError(f"{path} does not exist; check the path", path=str(path)) from exc
    except IsADirectoryError as exc:
        raise ImportRejectedError(f"{path} is a folder; expected a CSV file", path=str(path)) from exc
    except OSError as exc:
        raise ImportRejectedError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    if not data.strip():
        _refuse_empty(path)
    return data


def _refuse_empty(path: Path) -> None:
    raise ImportRejectedError(
        f"{path} is empty; expected a CSV export with a header line and at least one data row", path=str(path)
    )


def _bom_encoding(data: bytes) -> str | None:
    """UTF-16 or UTF-32 announced by a byte-order mark (Excel's "Unicode text"); None for anything else."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _refuse_binary(path: Path, text: str) -> None:
    """Checked on the decoded text, so UTF-16 files (NUL in every other byte) are not taken for binary."""
    sample = text[:BINARY_SAMPLE_BYTES]
    controls = sum(1 for char in sample if char < " " and char not in "\t\n\f\r")
    if "\x00" in sample or controls > MAX_CONTROL_SHARE * len(sample):
        raise ImportRejectedError(
            f"{path} looks like a binary file (NUL or control bytes near the start), not CSV text; "
            "export the data as CSV (if it is a spreadsheet or a compressed file, save or unpack it as .csv first)",
            path=str(path),
        )


def _decode(path: Path, data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportRejectedError(
                f"{path} cannot be decoded as {encoding}: {exc}; pass the file's real encoding with --encoding "
                "(e.g. utf-8, latin-1, cp1252)",
                path=str(path),
            ) from exc
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        fallback = _single_byte_encoding(data)
        log.warning(
            "%s is not valid UTF-8 (byte %d); reading it as %s. Pass --encoding if that is wrong",
            path,
            exc.start,
            fallback,
        )
        return data.decode(fallback), fallback


def _single_byte_encoding(data: bytes) -> str:
    """Windows-1252 when the file uses its bytes 0x80-0x9F (€, curly quotes, dashes: Excel on Windows), which
    latin-1 would turn into invisible control characters; otherwise latin-1 (the same text for every other byte)."""
    if _WINDOWS_ONLY.search(data):
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:  # one of the five bytes cp1252 leaves undefined: not a Windows file
            return "latin-1"
        return "cp1252"
    return "latin-1"


def _check_header(path: Path, header: list[str], delimiter: str) -> None:
    names = [name.strip() for name in header]
    if any(not name for name in names):
        position = next(i for i, name in enumerate(names, start=1) if not name)
        raise ImportRejectedError(
            f"{path} has no usable header: column {position} of line 1 has no name (line 1 is {header!r} with "
            f"delimiter {delimiter!r}); expected a header line naming every column. Add one, or check --delimiter",
            path=str(path),
        )
    data_like = [name for name in names if _DATA_LIKE.fullmatch(name) and any(c.isdigit() for c in name)]
    if data_like:
        raise ImportRejectedError(
            f"{path} has no header: line 1 ({delimiter.join(header)!r}) looks like data ({data_like[0]!r} is a "
            "number or date, not a column name); expected a header line naming the columns. Add one to the file",
            path=str(path),
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ImportRejectedError(
            f"{path} names columns {duplicates} more than once in its header; expected unique names. "
            "Rename the duplicates in the file",
            path=str(path),
        )


def _parse(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    body = text.lstrip("\r\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
            frame = pd.read_csv(
                io.StringIO(body),
                sep=delimiter,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                index_col=False,
                engine="c",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        raise ImportRejectedError(
            f"{path} is not valid CSV with delimiter {delimiter!r}: {exc}. Expected every row to have as many "
            "fields as the header; fix that line (a stray delimiter or unbalanced quote) or pass the right --delimiter",
            path=str(path),
        ) from exc
    frame.columns = [str(name).strip() for name in frame.columns]
    lines_in_body = body.count("\n") + (0 if body.endswith("\n") else 1)
    frame.index = _line_numbers(
        frame, leading_blank_lines=text[: len(text) - len(body)].count("\n"), physical_lines=lines_in_body
    )
    frame.index.name = "_row"
    blank = (frame == "").all(axis=1)
    if blank.all():
        raise ImportRejectedError(
            f"{path} has a header but no data rows; expected at least one row under the header", path=str(path)
        )
    return frame.loc[~blank]


def _line_numbers(frame: pd.DataFrame, *, leading_blank_lines: int, physical_lines: int) -> pd.Index:
    """Line of each row: header is line 1; quoted values spanning lines push later rows down."""
    first = 2 + leading_blank_lines
    if physical_lines == len(frame) + 1:  # no value spans lines: the common case, no need to look at values
        return pd.RangeIndex(first, first + len(frame))
    breaks = np.zeros(len(frame), dtype="int64")
    for column in frame.columns:
        breaks += frame[column].str.count("\n").to_numpy(dtype="int64")
    extra = np.concatenate([np.zeros(1, dtype="int64"), np.cumsum(breaks)[:-1]])
    lines: np.ndarray = first + np.arange(len(frame), dtype="int64") + extra
    index: pd.Index = pd.Index(lines, dtype="int64")
    return index
