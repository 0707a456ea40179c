"""Reading uploaded CSV files as a stream, and writing reject reports that are safe to open in Excel."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

REPLACEMENT_CHARACTER = "\ufffd"
# Cells starting with these are formulas to Excel, LibreOffice and Google Sheets.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
MAX_FIELD_CHARACTERS = 100_000


class UnreadableFile(ValueError):
    """The file, or the rest of it from `line` on, cannot be read (no header, wrong columns, not CSV)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Record:
    line: int  # 1-based line in the source file where this record starts (the header is line 1)
    values: list[str]


class _RawStream(io.RawIOBase):
    """Adapts any object with read(n) (a botocore StreamingBody, a file) to what TextIOWrapper needs."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def open_text(binary: Any) -> IO[str]:
    """A UTF-8 text view of a byte stream, read lazily: memory does not grow with the file.

    Undecodable bytes become U+FFFD so that one badly encoded row is rejected on its own instead of
    stopping the file; a leading byte-order mark (Excel's "CSV UTF-8") is dropped."""
    buffered = io.BufferedReader(_RawStream(binary), buffer_size=256 * 1024)
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline="")


def read_records(text: IO[str]) -> Iterator[Record]:
    """Every non-blank record, with the line it starts on (quoted fields may span lines)."""
    csv.field_size_limit(MAX_FIELD_CHARACTERS)
    reader = csv.reader(text)
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(
                f"the file cannot be read from here on ({exc}); check it is comma-separated CSV", start
            ) from exc
        if any(value.strip() for value in values):
            yield Record(start, values)
        start = reader.line_num + 1


def normalize_header(name: str) -> str:
    """Column names compare without case, spaces or Xero's '*' required-column marker."""
    return name.strip().lstrip("*").strip().lower().replace(" ", "")


def safe_cell(value: object) -> str:
    """A cell value that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


class RejectReport:
    """`row,field,value,error` lines for the rows that could not be imported, spooled to disk when large."""

    COLUMNS = ("row", "field", "value", "error")

    def __init__(self) -> None:
        self._binary = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - closed in close()
        self._text = io.TextIOWrapper(self._binary, encoding="utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._writer.writerow(self.COLUMNS)
        self.count = 0

    def add(self, row: int, field: str, value: str, error: str) -> None:
        self._writer.writerow([row, safe_cell(field), safe_cell(value[:500]), safe_cell(error)])
        self.count += 1

    def stream(self) -> IO[bytes]:
        """The finished report as bytes, from the start (for an upload that streams it)."""
        self._text.flush()
        self._binary.seek(0)
        return self._binary

    def close(self) -> None:
        self._text.close()
