"""Who may see and do what: one answer for the web, the API and the command.

Whatever is not visible to one of the caller's designated bodies is answered as if it did not
exist (NotFound), so nobody learns of another office's doctors by asking.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.designated_bodies import DesignatedBody, find_designated_body
from reval.models import ConnectionRequest, DoctorVisibility
from reval.reconcile.common import refused_as_invalid
from reval.reconcile.reference import configured_designated_bodies
from reval.refusals import NotFound, NotPermitted
from reval.services.context import Actor
from reval.validation import gmc_number


def visible_bodies(session: Session, actor: Actor) -> list[DesignatedBody]:
    """The configured bodies whose queues the actor may see, in code order."""
    bodies = configured_designated_bodies(session)
    return bodies if actor.national else [body for body in bodies if body.code in actor.designated_bodies]


def visible_body(session: Session, actor: Actor, code: str | None) -> DesignatedBody:
    """One of the actor's bodies, by its code in any letter case."""
    body = find_designated_body(visible_bodies(session, actor), code)
    if body is not None:
        return body
    why = "is not configured" if actor.national else "is not one of yours"
    raise NotFound(f"designated body {code!r} {why}", field="designatedBody")


def require_may_act(actor: Actor) -> None:
    if not actor.may_act:
        raise NotPermitted(f"{actor.name} may read queues but not change anything (role {actor.role.value})")


def require_national(actor: Actor, what: str) -> None:
    if not actor.national:
        raise NotPermitted(f"only national users may {what}")


def checked_gmc_number(text: str | None) -> str:
    with refused_as_invalid("gmcNumber"):
        return gmc_number("GMC number", text)


def doctor_bodies(session: Session, number: str) -> set[str]:
    """The designated bodies that see a doctor."""
    return set(
        session.scalars(select(DoctorVisibility.designated_body_code).where(DoctorVisibility.gmc_number == number))
    )


def may_see_doctor(session: Session, actor: Actor, number: str) -> bool:
    """Whether the doctor is visible to one of the actor's bodies (a national actor sees all)."""
    if actor.national:
        return True
    return bool(doctor_bodies(session, number) & actor.designated_bodies)


def not_visible(number: str) -> NotFound:
    return NotFound(f"GMC number {number} is not a doctor in your designated bodies' queues", field="gmcNumber")


def may_see_request(session: Session, actor: Actor, request: ConnectionRequest) -> bool:
    """A request is visible to the body it was made for, and wherever its doctor is visible."""
    return (
        actor.national
        or request.designated_body_code in actor.designated_bodies
        or may_see_doctor(session, actor, request.gmc_number)
    )
