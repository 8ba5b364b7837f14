"""Idempotency keys: a caller's repeated request gets the first answer again instead of acting twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reval.models import ApiIdempotencyKey
from reval.refusals import Conflict, Invalid


class StillAnswering(Conflict):
    """The first request with this key has not been answered yet."""


@dataclass(frozen=True)
class Answer:
    """An answer as it was given: status, body and the new resource's address."""

    status: int
    body: str
    location: str
    replayed: bool = False  # the first answer to the key, given again


def answered_once(
    sessions: sessionmaker[Session],
    *,
    caller: str,
    key: str,
    fingerprint: str,
    now: datetime,
    answer: Callable[[], Answer],
) -> Answer:
    """``answer()`` the first time ``caller`` uses ``key``; the same answer again (replayed) for the
    same request (``fingerprint``). Refuses the key with another request (Invalid), and while the
    first is still being answered (StillAnswering). A failed answer frees the key for another try."""
    if _claimed(sessions, caller, key, fingerprint, now):
        return _answer_and_record(sessions, caller, key, answer)
    return _first_answer(sessions, caller, key, fingerprint)


def _claimed(sessions: sessionmaker[Session], caller: str, key: str, fingerprint: str, now: datetime) -> bool:
    """Whether this is the key's first use (it is now recorded, its answer still to come)."""
    try:
        with sessions.begin() as session:
            session.add(ApiIdempotencyKey(caller=caller, key=key, fingerprint=fingerprint, created_at=now))
    except IntegrityError:
        return False
    return True


def _answer_and_record(sessions: sessionmaker[Session], caller: str, key: str, answer: Callable[[], Answer]) -> Answer:
    try:
        given = answer()
    except BaseException:
        with sessions.begin() as session:  # nothing was created: the key may be used again
            session.delete(session.get_one(ApiIdempotencyKey, (caller, key)))
        raise
    with sessions.begin() as session:
        record = session.get_one(ApiIdempotencyKey, (caller, key))
        record.status, record.body, record.location = given.status, given.body, given.location
    return given


def _first_answer(sessions: sessionmaker[Session], caller: str, key: str, fingerprint: str) -> Answer:
    """The first answer to the key again. No key: the first request failed since and freed it, so
    this one may try again too (like one still being answered)."""
    with sessions.begin() as session:
        first = session.get(ApiIdempotencyKey, (caller, key))
    if first is not None and first.fingerprint != fingerprint:
        raise Invalid(f"Idempotency-Key {key!r} was first used with a different request", field="Idempotency-Key")
    if first is None or first.status is None or first.body is None or first.location is None:
        raise StillAnswering(
            f"the first request with Idempotency-Key {key!r} is still being answered; try again shortly"
        )
    return Answer(first.status, first.body, first.location, replayed=True)
