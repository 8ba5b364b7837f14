"""Reading snapshot files, a record at a time whatever their size: one JSON document, or JSON Lines.

A file that cannot be read at all raises ``SnapshotUnreadable`` before anything is stored.
A single JSON Lines line that does not parse is a bad record, not a bad file: it is yielded as
``UnparseableRecord`` so the caller can reject it and carry on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson
import orjson


class SnapshotUnreadable(Exception):
    """The whole file is unusable: missing, not JSON, or not the expected shape."""


@dataclass(frozen=True, slots=True)
class UnparseableRecord:
    problem: str


def open_snapshot(path: str | Path, *, label: str, list_key: str, undecoded: bool = False) -> Iterator[tuple[str, Any]]:
    """Checks the file can be read, then returns an iterator of (locator, record).

    The check happens here, eagerly, so callers learn of an unreadable file before they open a
    transaction; the records themselves are produced lazily. ``undecoded``: JSON Lines records
    come as their line's bytes, for whoever validates them to decode (``parse_line``); a sync
    does that in its helper process.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        try:
            handle = path.open("rb")
        except OSError as error:
            raise SnapshotUnreadable(f"{label} file '{path}' cannot be read: {error.strerror}") from None
        return _json_lines(handle, undecoded)
    if path.suffix == ".json":
        _check_document(path, label, list_key)
        return _document_items(path, list_key)
    raise SnapshotUnreadable(f"{label} file '{path}' must end in .json or .jsonl")


def _check_document(path: Path, label: str, list_key: str) -> None:
    """Reads a JSON document as far as the start of its ``list_key`` list: a file that is not
    JSON or not the expected shape there is unreadable as a whole."""
    shape = f"{label} file '{path}' must be a JSON object with a '{list_key}' list"
    try:
        with path.open("rb") as handle:
            events = ijson.parse(handle)
            if next(events, None) != ("", "start_map", None):
                raise SnapshotUnreadable(shape)
            for prefix, event, value in events:
                if prefix == "" and event == "map_key" and value == list_key:
                    if next(events, (None, None, None))[1] != "start_array":
                        raise SnapshotUnreadable(shape)
                    return
            raise SnapshotUnreadable(shape)
    except OSError as error:
        raise SnapshotUnreadable(f"{label} file '{path}' cannot be read: {error.strerror}") from None
    except ijson.JSONError as error:
        raise SnapshotUnreadable(f"{label} file '{path}' is not valid JSON: {_first_line(error)}") from None


def _document_items(path: Path, list_key: str) -> Iterator[tuple[str, Any]]:
    """The records of a JSON document's list, streamed: memory stays that of one record whatever
    the file's size. Should the file turn out broken part-way (cut short), what follows the last
    whole record is one unreadable record, so the snapshot counts as incomplete."""
    read = 0
    for backend in (ijson, PYTHON_PARSER):
        with path.open("rb") as handle:
            try:
                for index, record in enumerate(backend.items(handle, f"{list_key}.item", use_float=True)):
                    if index >= read:  # the second parser starts again from the top
                        yield f"{list_key}[{index}]", record
                        read = index + 1
                return
            except ijson.JSONError as error:
                if backend is ijson and "integer overflow" in str(error):
                    continue  # yajl's integers end at 64 bits; Python's parser (slower) has no limit
                problem = (
                    f"the file is not valid JSON from here on, so the rest of it was not read: {_first_line(error)}"
                )
                yield f"{list_key}[{read}]", UnparseableRecord(problem)
                return


# Takes over from the C parser only for a file holding an integer too large for it.
PYTHON_PARSER = ijson.get_backend("python")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _json_lines(handle, undecoded: bool) -> Iterator[tuple[str, Any]]:
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            yield f"line {number}", line if undecoded else parse_line(line)


def parse_line(line: bytes) -> Any:
    """One JSON Lines record, or UnparseableRecord: a bad line is a bad record, not a bad file."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return UnparseableRecord(f"line is not valid JSON: {error}")
