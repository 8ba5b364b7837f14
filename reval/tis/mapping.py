"""TCS's API shapes mapped into the TIS snapshot format, so a live pull and a file share one path.

Values are carried over as TIS sent them: validation (``reval.tis.records``) happens in the sync,
exactly as for a file, so a bad value is rejected with its field named, whichever way it came.
"""

from __future__ import annotations

from typing import Any

from reval.tis.records import CURRICULUM_FIELDS, PLACEMENT_FIELDS, PROGRAMME_MEMBERSHIP_FIELDS

PLACEHOLDER_ROLE_WORDS = ("dummy", "placeholder")


def is_placeholder(listed_person: dict[str, Any]) -> bool:
    """A listed person whose role marks them as a dummy or placeholder record, not a trainee."""
    roles = str(listed_person.get("role") or "").lower().split(",")
    return any(word in role for role in roles for word in PLACEHOLDER_ROLE_WORDS)


def person_record(person: dict[str, Any], placements: Any) -> dict[str, Any]:
    """``GET /api/people/v2/{id}`` and ``GET /api/people/{id}/placements`` as one TIS snapshot person."""
    return {
        "tisPersonId": person.get("id"),
        "gmcNumber": _inner(person, "gmcDetails").get("gmcNumber"),
        "forenames": _inner(person, "contactDetails").get("forenames"),
        "surname": _inner(person, "contactDetails").get("surname"),
        "status": person.get("status"),
        "programmeMemberships": _each(person.get("programmeMemberships"), programme_membership_record),
        "placements": _each(placements, placement_record),
    }


def programme_membership_record(membership: dict[str, Any]) -> dict[str, Any]:
    record = _pick(membership, PROGRAMME_MEMBERSHIP_FIELDS)
    record["curricula"] = _each(membership.get("curriculumMemberships"), curriculum_record)
    return record


def curriculum_record(curriculum: dict[str, Any]) -> dict[str, Any]:
    return _pick(curriculum, CURRICULUM_FIELDS)


def placement_record(placement: dict[str, Any]) -> dict[str, Any]:
    return _pick(placement, PLACEMENT_FIELDS)


def _pick(document: dict[str, Any], names) -> dict[str, Any]:
    """The fields the snapshot format has (TCS uses the same names for these), and no others."""
    return {name: document.get(name) for name in names}


def _inner(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    return value if isinstance(value, dict) else {}


def _each(items: Any, record) -> Any:
    """Maps a list of objects; anything else is passed on for validation to reject by name."""
    if not isinstance(items, list):
        return items if items is not None else []
    return [record(item) if isinstance(item, dict) else item for item in items]
