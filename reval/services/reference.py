"""The configured designated bodies: which GMC lists are fetched and whose queues exist."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from reval.designated_bodies import DesignatedBody, find_designated_body
from reval.reconcile.reference import configured_designated_bodies, replace_designated_bodies
from reval.services.access import require_national
from reval.services.context import Context


def configured_bodies(reads: sessionmaker[Session]) -> list[DesignatedBody]:
    """Every configured body, in code order: anyone may know them (signing in lists them)."""
    with reads() as session:
        return configured_designated_bodies(session)


def configured_codes(reads: sessionmaker[Session], codes: Iterable[str]) -> list[str]:
    """Those of ``codes`` (any letter case) that are configured, in their configured spelling."""
    bodies = configured_bodies(reads)
    return sorted({body.code for code in codes if (body := find_designated_body(bodies, code)) is not None})


def replace_configured_bodies(context: Context, bodies: Sequence[DesignatedBody]) -> None:
    """Makes ``bodies`` the configured set; only these are fetched from GMC from now on."""
    require_national(context.actor, "configure the designated bodies")
    with context.sessions.begin() as session:
        replace_designated_bodies(session, bodies)
