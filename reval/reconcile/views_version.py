"""A token that changes whenever a committed transaction has written the queues' view rows
(``doctor_visibility``), so a body's queue counts can be kept in memory and counted again only
when it changes (see reval.services.queues).

Every writer that adds or removes view rows, or changes their queue or readiness, calls
``views_written`` on its session: the decisions, an admin's hide or unhide, archiving. The token
is replaced just before that transaction commits, so it commits with the rows, and its row is
locked only while the transaction commits: a sync's transaction runs for minutes, and an admin's
hide must not wait for it. A migration or a hand-made fix that changes view rows outside a
session must delete the token (``DELETE FROM views_version``).

A reader takes the token, then counts, in one read transaction: one snapshot on PostgreSQL
(repeatable read) and on SQLite, so the counts are those of the token's rows. (Were they two
snapshots, a count could include a transaction committed after the token was read, never miss
one committed before it, and the later transaction would have replaced the token.) The token is
random, not a counter: a database emptied, rebuilt or restored from a backup can never bring
back a token some process kept counts at for other rows. No row (a new or an emptied database)
means nothing is kept until the first write.
"""

from __future__ import annotations

import secrets

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

from reval.models import ViewsVersion

_WRITTEN = "reval.views_written"  # the session's info key: this transaction wrote view rows


def views_written(session: Session) -> None:
    """Says the session's transaction writes view rows: the token is replaced as it commits."""
    session.info[_WRITTEN] = True


def views_token(session: Session) -> str | None:
    """The token as this session sees it; None until the first write."""
    return session.scalar(select(ViewsVersion.token).where(ViewsVersion.id == 1))


@event.listens_for(Session, "before_commit")
def _replace_token(session: Session) -> None:
    # A savepoint's release fires this too, but commits nothing: the token goes with the outermost.
    if session.in_nested_transaction() or not session.info.pop(_WRITTEN, False):
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    token = secrets.token_hex(16)
    statement = insert(ViewsVersion).values(id=1, token=token)
    session.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"token": token}))


@event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: SessionTransaction) -> None:
    # Only as the outermost transaction ends (committed, rolled back or closed): a savepoint rolled
    # back leaves the view rows written before it, still to commit.
    if transaction.parent is None:
        session.info.pop(_WRITTEN, None)
