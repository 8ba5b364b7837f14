"""A TIS person with programme memberships and placements, validated into Reval's own form.

The validated form keeps TIS's field names, with values normalised (trimmed text, canonical
enumerations, ``date`` objects), and is what Reval stores for the person (its documents without
their keys: ``stored_memberships``, ``stored_placements``). ``read_person`` is the bulk path;
``PersonSchema`` is the same contract in marshmallow, used for single records and checked against
``read_person`` in the tests. Both apply the rules in ``reval.validation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any, cast

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from reval.validation import (
    FieldReader,
    InvalidValue,
    Rule,
    date_range,
    gmc_number_or_none,
    iso_date,
    list_of_objects,
    opaque_id,
    optional_code,
    optional_enumeration,
    optional_iso_date,
    optional_text,
    record_id,
    require_object,
)

PERSON_STATUSES = ("CURRENT", "INACTIVE")
PROGRAMME_MEMBERSHIP_TYPES = ("SUBSTANTIVE", "LAT", "FTSTA", "MILITARY", "VISITOR", "ACADEMIC")

FieldRules = dict[str, Callable[[str, Any], Any]]

CURRICULUM_FIELDS: FieldRules = {
    "curriculumName": optional_text,
    "curriculumStartDate": optional_iso_date,
    "curriculumEndDate": optional_iso_date,
}
PLACEMENT_FIELDS: FieldRules = {
    "id": opaque_id,
    "gradeAbbreviation": optional_code,
    "dateFrom": iso_date,
    "dateTo": optional_iso_date,
}
PROGRAMME_MEMBERSHIP_FIELDS: FieldRules = {
    "id": opaque_id,  # TCS's own is a UUID
    "programmeName": optional_text,
    "programmeNumber": optional_code,
    "programmeMembershipType": partial(optional_enumeration, allowed=PROGRAMME_MEMBERSHIP_TYPES),
    "programmeStartDate": iso_date,
    "programmeEndDate": optional_iso_date,
    "programmeOwner": optional_text,
    "trainingPathway": optional_code,
}
PERSON_FIELDS: FieldRules = {
    "tisPersonId": record_id,
    "gmcNumber": gmc_number_or_none,
    "forenames": optional_text,
    "surname": optional_text,
    "status": partial(optional_enumeration, allowed=PERSON_STATUSES),
}


def _reader(rules: FieldRules) -> FieldReader:
    """The bulk reader of these fields; identifiers are different in every record."""
    return FieldReader(
        ((field, field, rule) for field, rule in rules.items()), unique=(record_id, gmc_number_or_none, opaque_id)
    )


CURRICULUM_READER = _reader(CURRICULUM_FIELDS)
PLACEMENT_READER = _reader(PLACEMENT_FIELDS)
PROGRAMME_MEMBERSHIP_READER = _reader(PROGRAMME_MEMBERSHIP_FIELDS)
PERSON_READER = _reader(PERSON_FIELDS)

# Cross-field rules: (start field, end field) pairs whose end may not precede their start.
DATE_RANGES = {
    "curricula": ("curriculumStartDate", "curriculumEndDate"),
    "placements": ("dateFrom", "dateTo"),
    "programmeMemberships": ("programmeStartDate", "programmeEndDate"),
}


def read_person(raw: Any) -> dict[str, Any]:
    """The validated person; raises InvalidValue naming the first bad field and its value."""
    raw = require_object("person", raw)
    person = PERSON_READER.read(raw)
    memberships = []
    for index, item in enumerate(list_of_objects("programmeMemberships", raw.get("programmeMemberships"))):
        prefix = f"programmeMemberships[{index}]"
        membership = _read_item(item, PROGRAMME_MEMBERSHIP_READER, "programmeMemberships", prefix)
        membership["curricula"] = [
            _read_item(curriculum, CURRICULUM_READER, "curricula", f"{prefix}.curricula[{position}]")
            for position, curriculum in enumerate(_located(prefix, list_of_objects, "curricula", item.get("curricula")))
        ]
        memberships.append(membership)
    person["programmeMemberships"] = memberships
    person["placements"] = [
        _read_item(item, PLACEMENT_READER, "placements", f"placements[{index}]")
        for index, item in enumerate(list_of_objects("placements", raw.get("placements")))
    ]
    return person


def _read_item(raw: dict, reader: FieldReader, kind: str, prefix: str) -> dict[str, Any]:
    try:
        item = reader.read(raw)
        start, end = DATE_RANGES[kind]
        date_range(start, item[start], end, item[end])
    except InvalidValue as error:
        raise error.at(prefix) from None
    return item


def _located(prefix: str, function, *args):
    try:
        return function(*args)
    except InvalidValue as error:
        raise error.at(prefix) from None


class _ValidatedSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    kind: str = ""

    @post_load
    def check_date_range(self, data: dict, **kwargs) -> dict:
        if self.kind:
            start, end = DATE_RANGES[self.kind]
            try:
                date_range(start, data.get(start), end, data.get(end))
            except InvalidValue as error:
                raise ValidationError(str(error), field_name=end) from None
        return data


def _schema(name: str, rules: FieldRules, kind: str = "", **nested) -> type[Schema]:
    declared: dict[str, fields.Field[Any]] = {field: Rule(rule) for field, rule in rules.items()}
    declared.update(nested)
    # A subclass of _ValidatedSchema: marshmallow types from_dict as giving a plain Schema class.
    schema = cast(type[_ValidatedSchema], _ValidatedSchema.from_dict(declared, name=name))
    schema.kind = kind
    return schema


CurriculumSchema = _schema("CurriculumSchema", CURRICULUM_FIELDS, "curricula")
PlacementSchema = _schema("PlacementSchema", PLACEMENT_FIELDS, "placements")
ProgrammeMembershipSchema = _schema(
    "ProgrammeMembershipSchema",
    PROGRAMME_MEMBERSHIP_FIELDS,
    "programmeMemberships",
    curricula=fields.List(fields.Nested(CurriculumSchema), load_default=list),
)
PersonSchema = _schema(
    "PersonSchema",
    PERSON_FIELDS,
    programmeMemberships=fields.List(fields.Nested(ProgrammeMembershipSchema), load_default=list),
    placements=fields.List(fields.Nested(PlacementSchema), load_default=list),
)


# How a person's documents are stored (tis_person.programme_memberships and .placements, migration
# 0013): each item as an array of its values in its fields' order, a membership's curricula last.
# The keys, the same in every item, were over half of each person's row: a national database
# wrote, checkpointed and read them back a million times over.
_MEMBERSHIP_VALUES = itemgetter(*PROGRAMME_MEMBERSHIP_FIELDS, "curricula")
_CURRICULUM_VALUES = itemgetter(*CURRICULUM_FIELDS)
_PLACEMENT_VALUES = itemgetter(*PLACEMENT_FIELDS)


def stored_memberships(memberships: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Validated programme memberships as they are stored."""
    stored = []
    for membership in memberships:
        values = list(_MEMBERSHIP_VALUES(membership))
        values[-1] = list(map(_CURRICULUM_VALUES, values[-1]))
        stored.append(values)
    return stored


def stored_placements(placements: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Validated placements as they are stored."""
    return list(map(_PLACEMENT_VALUES, placements))


def memberships_from_storage(stored: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Stored programme memberships in the validated form (``stored_memberships`` undone)."""
    return [
        {
            **dict(zip(PROGRAMME_MEMBERSHIP_FIELDS, values[:-1], strict=True)),
            "curricula": [dict(zip(CURRICULUM_FIELDS, curriculum, strict=True)) for curriculum in values[-1]],
        }
        for values in stored
    ]


def placements_from_storage(stored: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Stored placements in the validated form (``stored_placements`` undone)."""
    return [dict(zip(PLACEMENT_FIELDS, values, strict=True)) for values in stored]
