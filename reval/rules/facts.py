"""Facts: what the rule table may ask about a doctor, and how they are derived on a date.

Every fact has a small finite domain, so the whole space of doctors the table can see is
enumerable; that is what lets ``reval.rules.checks`` prove the table has no gaps.
The derivation is pure: it is handed the doctor's situation and the as-of date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple, Protocol

NONE, ONE, MANY = "NONE", "ONE", "MANY"
ONE_DAY = timedelta(days=1)
BOOLEAN = (False, True)
COUNT = (NONE, ONE, MANY)


@dataclass(frozen=True)
class Fact:
    name: str
    meaning: str
    domain: tuple[object, ...]


FACTS: tuple[Fact, ...] = (
    Fact("current_f1_placement", "a current placement has grade F1", BOOLEAN),
    Fact(
        "military",
        "a current programme membership is MILITARY (none current: the most recently ended one is)",
        BOOLEAN,
    ),
    Fact("tis_people", "how many TIS people have the GMC number", COUNT),
    Fact(
        "tis_record_rejected",
        "a TIS person with the GMC number sent only records Reval rejected, so none of theirs is held",
        BOOLEAN,
    ),
    Fact("connected", "a fetched GMC list of a designated body contains the doctor", BOOLEAN),
    Fact("inactive_in_tis", "a TIS person with the GMC number is INACTIVE", BOOLEAN),
    Fact("unknown_programme_owner", "a current programme's owner maps to no designated body", BOOLEAN),
    Fact("current_programme_owners", "how many designated bodies own current programmes", COUNT),
    Fact(
        "connected_to_programme_owner",
        "the GMC connection is to a designated body owning a current programme",
        BOOLEAN,
    ),
    Fact("current_programme", "a programme membership is current", BOOLEAN),
    Fact("ended_programme", "a programme membership has ended", BOOLEAN),
    Fact(
        "previously_connected",
        "has been connected to a designated body, in this sync or an earlier one",
        BOOLEAN,
    ),
)


class DoctorFacts(NamedTuple):
    current_f1_placement: bool
    military: bool
    tis_people: str
    tis_record_rejected: bool
    connected: bool
    inactive_in_tis: bool
    unknown_programme_owner: bool
    current_programme_owners: str
    connected_to_programme_owner: bool
    current_programme: bool
    ended_programme: bool
    previously_connected: bool


assert DoctorFacts._fields == tuple(fact.name for fact in FACTS), "DoctorFacts must follow FACTS"

# What can be true together. The static checks only demand answers for consistent facts, and
# a property test shows that derive() never produces anything else.
CONSISTENCY: tuple[tuple[str, Callable[[DoctorFacts], bool]], ...] = (
    (
        "with no TIS person there are no placements, programmes or TIS statuses",
        lambda f: (
            f.tis_people != NONE
            or not (
                f.current_f1_placement
                or f.military
                or f.inactive_in_tis
                or f.unknown_programme_owner
                or f.current_programme
                or f.ended_programme
            )
        ),
    ),
    (
        "programme owners, known or not, belong to current programmes",
        lambda f: f.current_programme == (f.current_programme_owners != NONE or f.unknown_programme_owner),
    ),
    (
        "being connected to a programme owner needs a connection and a current owner",
        lambda f: not f.connected_to_programme_owner or (f.connected and f.current_programme_owners != NONE),
    ),
    (
        "a connected doctor has been connected",
        lambda f: not f.connected or f.previously_connected,
    ),
    (
        "a military doctor has a current or an ended programme",
        lambda f: not f.military or f.current_programme or f.ended_programme,
    ),
)


def is_consistent(facts: DoctorFacts) -> bool:
    return all(holds(facts) for _meaning, holds in CONSISTENCY)


# The doctor's situation, as the reconciliation hands it over: plain values, no sources.
class ProgrammeSpan(NamedTuple):
    membership_type: str | None
    start: date
    end: date | None  # None: open-ended
    owner: str | None
    owner_designated_body: str | None  # None: the owner maps to no designated body
    name: str | None = None  # the programme's name: shown to people, never decided on


class DateSpan(Protocol):
    """A placement's first day and last day (None: open-ended)."""

    @property
    def start(self) -> date: ...

    @property
    def end(self) -> date | None: ...


class PlacementSpan(NamedTuple):
    grade: str | None
    start: date
    end: date | None


class TisPersonView(NamedTuple):
    tis_person_id: int
    status: str | None
    programmes: tuple[ProgrammeSpan, ...]
    placements: tuple[PlacementSpan, ...]


class DoctorSituation(NamedTuple):
    gmc_designated_body: str | None  # from a fetched (or kept, when not fetched) GMC list
    last_connected_designated_body: str | None  # the GMC one when connected, else the last before
    tis_people: tuple[TisPersonView, ...]
    # TIS people with this GMC number of whom Reval holds nothing, every record rejected: the
    # designated bodies their programmes name (where readable), one tuple per person.
    rejected_tis_people: tuple[tuple[str, ...], ...] = ()


class DerivedFacts(NamedTuple):
    facts: DoctorFacts
    programme_owner_designated_bodies: tuple[str, ...]  # "P", sorted


def programme_is_current(programme: ProgrammeSpan, as_of: date) -> bool:
    # A membership ending on the as-of date has ended: it must end on the next day or later.
    return programme.start <= as_of and (programme.end is None or programme.end > as_of)


def programme_has_ended(programme: ProgrammeSpan, as_of: date) -> bool:
    return programme.end is not None and programme.end <= as_of


def placement_is_current(placement: DateSpan, as_of: date) -> bool:
    return placement.start <= as_of and (placement.end is None or as_of <= placement.end)


def is_f1(placement: PlacementSpan) -> bool:
    return placement.grade is not None and placement.grade.strip().upper() == "F1"


def owning_programmes(
    programmes: tuple[ProgrammeSpan, ...], current: list[ProgrammeSpan], ended: list[ProgrammeSpan], as_of: date
) -> list[ProgrammeSpan]:
    """The programmes whose owners make P for one person (given those of ``programmes`` current and
    ended on ``as_of``): the current ones; else the most recently ended; else the soonest to start."""
    return current or _latest_ended(ended) or _soonest_future(programmes, as_of)


def _most_recently_ended(programmes: Sequence[ProgrammeSpan], as_of: date) -> list[ProgrammeSpan]:
    return _latest_ended([p for p in programmes if programme_has_ended(p, as_of)])


def _latest_ended(ended: list[ProgrammeSpan]) -> list[ProgrammeSpan]:
    """Of programmes that have ended, those that ended last."""
    latest = max((p.end for p in ended if p.end is not None), default=None)  # (every one has an end)
    return [p for p in ended if p.end == latest]


def _soonest_future(programmes: Sequence[ProgrammeSpan], as_of: date) -> list[ProgrammeSpan]:
    future = [p for p in programmes if p.start > as_of]
    soonest = min((p.start for p in future), default=None)
    return [p for p in future if p.start == soonest]


def shown_programme(situation: DoctorSituation, as_of: date) -> ProgrammeSpan | None:
    """The one programme membership a queue shows for a doctor: the current one that started
    last; with none current, the most recently ended; else the soonest to start."""
    programmes = [p for person in situation.tis_people for p in person.programmes]
    current = [p for p in programmes if programme_is_current(p, as_of)]
    if current:
        return max(current, key=lambda p: (p.start, p.end or date.max))
    chosen = _most_recently_ended(programmes, as_of) or _soonest_future(programmes, as_of)
    return chosen[0] if chosen else None


def _count(n: int) -> str:
    return NONE if n == 0 else ONE if n == 1 else MANY


class _Spans(NamedTuple):
    """What the facts need of a doctor's TIS people, from one pass over each person's
    programmes and placements: this runs for every doctor of a sync."""

    current: list[ProgrammeSpan]
    ended: list[ProgrammeSpan]
    owners: set[str]  # P: the owners of each person's owning programmes
    current_f1_placement: bool
    inactive_in_tis: bool


def _spans(people: Sequence[TisPersonView], as_of: date) -> _Spans:
    current: list[ProgrammeSpan] = []
    ended: list[ProgrammeSpan] = []
    owners: set[str] = set()
    current_f1_placement = inactive_in_tis = False
    for person in people:
        programmes = person.programmes
        own_current = [p for p in programmes if programme_is_current(p, as_of)]
        own_ended = [p for p in programmes if programme_has_ended(p, as_of)]
        owning = owning_programmes(programmes, own_current, own_ended, as_of)
        owners.update(p.owner_designated_body for p in owning if p.owner_designated_body is not None)
        current += own_current
        ended += own_ended
        current_f1_placement = current_f1_placement or _has_current_f1_placement(person, as_of)
        inactive_in_tis = inactive_in_tis or person.status == "INACTIVE"
    return _Spans(current, ended, owners, current_f1_placement, inactive_in_tis)


def _has_current_f1_placement(person: TisPersonView, as_of: date) -> bool:
    return any(is_f1(placement) and placement_is_current(placement, as_of) for placement in person.placements)


def derive(situation: DoctorSituation, as_of: date) -> DerivedFacts:
    spans = _spans(situation.tis_people, as_of)
    current, ended = spans.current, spans.ended
    current_owners = {p.owner_designated_body for p in current if p.owner_designated_body is not None}
    military_candidates = current or _latest_ended(ended)
    gmc_body = situation.gmc_designated_body
    facts = DoctorFacts(
        current_f1_placement=spans.current_f1_placement,
        military=any(p.membership_type == "MILITARY" for p in military_candidates),
        tis_people=_count(len(situation.tis_people)),
        tis_record_rejected=bool(situation.rejected_tis_people),
        connected=gmc_body is not None,
        inactive_in_tis=spans.inactive_in_tis,
        unknown_programme_owner=any(p.owner_designated_body is None for p in current),
        current_programme_owners=_count(len(current_owners)),
        connected_to_programme_owner=gmc_body is not None and gmc_body in current_owners,
        current_programme=bool(current),
        ended_programme=bool(ended),
        previously_connected=situation.last_connected_designated_body is not None,
    )
    return DerivedFacts(facts, tuple(sorted(spans.owners)))


def stable_between(situation: DoctorSituation, as_of: date) -> tuple[date | None, date | None]:
    """[from, until): the dates around ``as_of`` on which no date-based fact can change.

    Facts change only when a programme starts or ends or a placement starts or stops, so a
    decision made on ``as_of`` holds for every day in this window while the sources stay the same.
    None means unbounded.
    """
    since = until = None
    for person in situation.tis_people:
        for day in _change_days(person):
            if day <= as_of:
                if since is None or day > since:
                    since = day
            elif until is None or day < until:
                until = day
    return since, until


def _change_days(person: TisPersonView) -> list[date]:
    """The days on which a fact of the person's may change."""
    days = [programme.start for programme in person.programmes]  # current from its start date
    days += [programme.end for programme in person.programmes if programme.end is not None]  # ended from its end
    days += [placement.start for placement in person.placements]
    days += [  # current through its last day (9999-12-31: never stops)
        placement.end + ONE_DAY
        for placement in person.placements
        if placement.end is not None and placement.end < date.max
    ]
    return days
