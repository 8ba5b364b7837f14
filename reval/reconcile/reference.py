"""The configured designated bodies, as stored."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reval.designated_bodies import DesignatedBody, check_unique, find_designated_body
from reval.models import DesignatedBodyRecord
from reval.refusals import Invalid

BODIES_READ = "reval.configured_bodies"  # session.info: (the transaction, its bodies)


def configured_designated_bodies(session: Session) -> list[DesignatedBody]:
    """The configured bodies, read once per transaction: a queue page asks for them in each of
    its scoped queries (the page, each tab's count), and they change only with replace_designated_bodies."""
    transaction = session.get_transaction()
    read = session.info.get(BODIES_READ)
    if read is not None and transaction is not None and read[0] is transaction:
        return list(read[1])
    bodies = [
        DesignatedBody(record.code, record.name, record.owner)
        for record in session.scalars(select(DesignatedBodyRecord).order_by(DesignatedBodyRecord.code))
    ]
    session.info[BODIES_READ] = (session.get_transaction(), tuple(bodies))
    return bodies


def configured_code(session: Session, code: str) -> str:
    """The configured body's code for ``code`` (any case), or a refusal naming it."""
    body = find_designated_body(configured_designated_bodies(session), code)
    if body is None:
        raise Invalid(f"designated body {code!r} is not configured", field="designatedBody")
    return body.code


def replace_designated_bodies(session: Session, bodies: Sequence[DesignatedBody]) -> None:
    """Makes ``bodies`` the configured set; only these are fetched from GMC from now on."""
    check_unique(bodies, source="designated bodies")
    session.info.pop(BODIES_READ, None)
    session.execute(delete(DesignatedBodyRecord))
    session.add_all(DesignatedBodyRecord(code=b.code, name=b.name, owner=b.owner) for b in bodies)
