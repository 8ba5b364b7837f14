"""CSV for people to open in a spreadsheet: one writer for every download and export.

A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return) would
be run by Excel or LibreOffice when the file is opened, so a name such as ``=HYPERLINK(...)`` in
a source could act on an admin's machine. Such a cell is written with a leading ``'``, which
spreadsheets show as text (the OWASP advice for CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as a cell's text (None empty, a list joined by ``;``) that no spreadsheet runs."""
    if value is None:
        text = ""
    elif isinstance(value, (list, tuple)):
        text = ";".join(map(str, value))
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeCsvWriter:
    """``csv.writer`` whose every cell passes through ``safe_cell``."""

    def __init__(self, stream: IO[str], *, delimiter: str = ",", lineterminator: str = "\r\n"):
        self._writer = csv.writer(stream, delimiter=delimiter, lineterminator=lineterminator)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])


CHUNK_BYTES = 65536  # a download is streamed in pieces of about this size


def csv_chunks(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """``rows`` (the header first) as CSV text for a streamed download, a piece at a time."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > CHUNK_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
