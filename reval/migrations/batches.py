"""What the data migrations share: reading a table a batch of rows at a time, in key order."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

BATCH = 5000


def in_batches(table: str, key: str, columns: Sequence[str], size: int = BATCH) -> Iterator[Sequence[sa.Row]]:
    """``table``'s rows (``key``, then ``columns``), ``size`` at a time in ``key`` order: a national
    table is rewritten without holding it in memory, and each batch may be written back before
    the next is read."""
    connection = op.get_bind()
    statement = f"SELECT {', '.join((key, *columns))} FROM {table}"
    last = None
    while True:
        if last is None:
            rows = connection.execute(sa.text(f"{statement} ORDER BY {key} LIMIT :size"), {"size": size}).all()
        else:
            rows = connection.execute(
                sa.text(f"{statement} WHERE {key} > :last ORDER BY {key} LIMIT :size"), {"size": size, "last": last}
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def json_document(value: Any) -> Any:
    """A JSON column's value as read by plain SQL: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
