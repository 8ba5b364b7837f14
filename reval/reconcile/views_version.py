"""A token that changes whenever a committed transaction has written the queues' view rows
(``doctor_visibility``), so a body's queue counts can be kept in memory and counted again only
when it changes (see reval.services.queues).

Every writer of view rows calls ``views_written`` on its session: the decisions, an admin's
hide or unhide, archiving. The token is replaced just before that transaction commits, so it
commits with the rows, and its row is locked only while the transaction commits: a sync's
transaction runs for minutes, and an admin's hide must not wait for it.

A reader takes the token before it counts. A count made at a token may include a transaction
committed after the token was read, but never misses one committed before it, and any later
transaction replaces the token: so counts kept at the token a reader finds are the rows it would
count. The token is random, not a counter: a database emptied, rebuilt or restored from a backup
can never bring back a token some process kept counts at for other rows. No row (a new or an
emptied database) means nothing is kept until the first write.
"""

from __future__ import annotations

import secrets

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

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
    if not session.info.pop(_WRITTEN, False):
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    token = secrets.token_hex(16)
    statement = insert(ViewsVersion).values(id=1, token=token)
    session.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"token": token}))


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
