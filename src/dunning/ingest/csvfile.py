"""Reading uploaded CSV files as a stream, and writing reject reports that are safe to open in Excel.

The reader never gives up on a file: a row it cannot read becomes a Record with an `error` (and no
values), and reading goes on with the next row, so one broken row costs that row only.

Resynchronising after a broken quote. Python's csv module, given a stray `"` at the start of a value,
reads on to the next `"` however far away it is, swallowing every row in between into one value. So
rows are assembled here from physical lines, and a quoted value that is still open at the end of a line
continues onto the next line only while all of these hold:

- the record spans at most MAX_RECORD_LINES physical lines and MAX_RECORD_CHARACTERS characters;
- the file has not ended;
- the next line, read on its own, does not look like a row of the file: a complete record with exactly
  as many values as the header has columns (when the header has at least two). A real multi-line value
  (a Xero line-item description) rarely has that shape; a row that follows a stray quote nearly always
  does.

When one of them fails the quote is taken as unterminated: the line the record started on is rejected on
its own ("a quoted value is not closed ...") and reading starts again from the very next physical line,
so every row after the broken one is read as if the stray quote were not there. The lookahead keeps at
most MAX_RECORD_LINES lines in memory: memory stays flat whatever the file's size.

Other rows that are rejected by the reader rather than by the format: a value over MAX_FIELD_CHARACTERS
characters, a row over MAX_RECORD_CHARACTERS characters. Byte-order marks at the start of the file (even
repeated ones, as from concatenated Excel exports) and at the start of any row are dropped; undecodable
bytes become U+FFFD and NUL bytes are kept, so that the format rejects the row that holds them.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from dunning.domain.models import safe_cell

REPLACEMENT_CHARACTER = "\ufffd"
BYTE_ORDER_MARK = "\ufeff"
MAX_FIELD_CHARACTERS = 100_000
MAX_RECORD_CHARACTERS = 1_000_000
MAX_RECORD_LINES = 100


class UnreadableFile(ValueError):
    """The file cannot be read at all (no header, wrong columns, not CSV): one report line, row 0."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Record:
    line: int  # 1-based line in the source file where this record starts (the header is line 1)
    values: list[str]
    # Set when the row could not be read as CSV; `values` is then empty and `text` holds its beginning.
    error: str = ""
    text: str = ""


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


# A physical line: its number and text (with its line ending), or None for a line too long to keep.
_Line = tuple[int, str | None]


class _Lines:
    """Physical lines (split at \\n, \\r\\n or \\r, as the csv module splits them), with push-back."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._number = 0
        self._pushed: deque[_Line] = deque()

    def next(self) -> _Line | None:
        if self._pushed:
            return self._pushed.popleft()
        line = self._text.readline(MAX_RECORD_CHARACTERS + 1)
        if not line:
            return None
        self._number += 1
        if len(line) > MAX_RECORD_CHARACTERS:
            # Skip the rest of this physical line without holding it.
            while line and not line.endswith(("\n", "\r")):
                line = self._text.readline(MAX_RECORD_CHARACTERS)
            return self._number, None
        return self._number, line

    def push_back(self, lines: list[_Line]) -> None:
        self._pushed.extendleft(reversed(lines))


def _open_quote_at_end(line: str, inside: bool) -> bool:
    """Whether a quoted value is still open at the end of `line`, as the csv module reads it (default
    dialect, not strict): a quote opens a value only at the start of a field; inside, `""` is a quote."""
    if not inside and '"' not in line:
        return False
    position = 0
    while True:
        if inside:
            closing = line.find('"', position)
            while closing >= 0 and line.startswith('""', closing):
                closing = line.find('"', closing + 2)
            if closing < 0:
                return True
            inside = False
            position = closing + 1
            # Text after the closing quote belongs to the same (now unquoted) field.
            comma = line.find(",", position)
            if comma < 0:
                return False
            position = comma + 1
        if line.startswith('"', position):
            inside = True
            position += 1
            continue
        comma = line.find(",", position)
        if comma < 0:
            return False
        position = comma + 1


def _parse(lines: list[str]) -> list[str]:
    rows = list(csv.reader(lines))
    if len(rows) != 1:
        raise csv.Error("the row could not be split into values")
    return rows[0]


def _looks_like_a_row(line: str, width: int | None) -> bool:
    if width is None or width < 2 or _open_quote_at_end(line, False):
        return False
    try:
        return len(_parse([line])) == width
    except csv.Error:
        return False


def read_records(text: IO[str]) -> Iterator[Record]:
    """Every non-blank record, with the line it starts on (quoted fields may span lines); rows that cannot
    be read come as Records with an error, and reading goes on after them (see the module docstring)."""
    csv.field_size_limit(MAX_FIELD_CHARACTERS)
    lines = _Lines(text)
    width: int | None = None  # the header's, once read
    while (first := lines.next()) is not None:
        number, line = first
        if line is None:
            yield Record(number, [], f"the row is longer than {MAX_RECORD_CHARACTERS:,} characters", "")
            continue
        if line.startswith(BYTE_ORDER_MARK):
            line = line.lstrip(BYTE_ORDER_MARK)
        taken: list[_Line] = [(number, line)]
        size = len(line)
        inside = _open_quote_at_end(line, False)
        while inside:
            following = lines.next()
            next_number, more = following if following is not None else (0, None)
            if (
                more is None
                or len(taken) >= MAX_RECORD_LINES
                or size + len(more) > MAX_RECORD_CHARACTERS
                or _looks_like_a_row(more, width)
            ):
                lines.push_back(taken[1:] + ([following] if following is not None else []))
                yield Record(
                    number,
                    [],
                    "a quoted value is not closed (a stray '\"'?); this row was skipped and the rows "
                    "after it were read on their own",
                    line[:200],
                )
                break
            taken.append((next_number, more))
            size += len(more)
            inside = _open_quote_at_end(more, True)
        if inside:
            continue
        texts = [text_ for _, text_ in taken if text_ is not None]
        try:
            values = _parse(texts)
        except csv.Error as exc:
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = f"a value is longer than {MAX_FIELD_CHARACTERS:,} characters"
            yield Record(number, [], f"the row cannot be read as CSV ({reason})", "".join(texts)[:200])
            continue
        if any(value.strip() for value in values):
            if width is None:
                width = len(values)
            yield Record(number, values)


def normalize_header(name: str) -> str:
    """Column names compare without case, spaces or Xero's '*' required-column marker."""
    return name.strip().lstrip(BYTE_ORDER_MARK).lstrip("*").strip().lower().replace(" ", "")


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
