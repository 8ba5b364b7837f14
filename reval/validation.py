"""The value rules shared by every record that crosses Reval's boundary.

Each rule lives here once. The marshmallow schemas (one record at a time: API, tests, the
single-record paths) and the bulk file readers (hundreds of thousands of records per sync) both
call these functions, so the two paths cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from functools import cache
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow import missing as missing_


class InvalidValue(ValueError):
    """A value that breaks a rule; its message names the field and the offending value."""

    def __init__(self, field: str, value: Any, problem: str):
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}: {problem} (got {describe_value(value)})")

    def at(self, prefix: str) -> InvalidValue:
        """The same error, located under a parent field (e.g. ``programmeMemberships[1]``)."""
        return InvalidValue(f"{prefix}.{self.field}", self.value, self.problem)


def describe_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= DESCRIBED_LENGTH else text[: DESCRIBED_LENGTH - 3] + "..."


# ASCII digits only: \d would take any script's digits (١٢٣٤٥٦٧), which no GMC list holds.
GMC_NUMBER_PATTERN = re.compile(r"[0-9]{7}")

# What storage and the rules can hold: the earliest date taken (a later one up to 9999-12-31,
# TIS's "open-ended", is an ordinary date), the largest record id, the longest texts.
EARLIEST_DATE = date(1900, 1, 1)
MAX_RECORD_ID = 2**63 - 1
NAME_LENGTH = 200  # names, programme names and owners: the width of the columns that hold them
DESCRIBED_LENGTH = 60  # a value quoted in a rejection, cut to this
MAX_WHOLE_NUMBER_DIGITS = 19  # 2**63 - 1, the largest record id, has 19
ISO_DATE_LENGTH = len("YYYY-MM-DD")
CODE_LENGTH = 100  # GMC's statuses, grades, programme numbers, opaque ids

# C0 and C1 control characters (NUL, tabs, newlines, escapes...): never part of a name or a reason,
# refused by PostgreSQL (NUL) and used by Reval itself to separate names (newline).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# What TIS admins type when a trainee has no GMC number yet.
NO_GMC_NUMBER_PLACEHOLDERS = frozenset({"", "unknown", "n/a", "na", "none", "null", "-"})


def gmc_number_or_none(field: str, value: Any) -> str | None:
    """A TIS GMC number: 7 digits, or None where TIS says there is none."""
    if value is None:
        return None
    text = _stripped_text(field, value)
    if text.lower() in NO_GMC_NUMBER_PLACEHOLDERS:
        return None
    if not GMC_NUMBER_PATTERN.fullmatch(text):
        raise InvalidValue(field, value, "is not a 7-digit GMC number")
    return text


def gmc_number(field: str, value: Any) -> str:
    """A GMC reference number that must be present (GMC's own lists, admin commands)."""
    number = gmc_number_or_none(field, value)
    if number is None:
        raise InvalidValue(field, value, "is required: a 7-digit GMC number")
    return number


def _stripped_text(field: str, value: Any) -> str:
    if isinstance(value, bool):
        raise InvalidValue(field, value, "must be text")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise InvalidValue(field, value, "must be text")
    # str.strip() also removes non-breaking spaces, which TIS exports are full of.
    return value.strip()


def optional_text(field: str, value: Any, max_length: int = NAME_LENGTH) -> str | None:
    """Text from a source: trimmed, None when empty, at most ``max_length`` characters and no
    control characters (PostgreSQL refuses NUL; Reval separates names with newlines)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(field, value, "must be text")
    text = value.strip()
    if len(text) > max_length:
        raise InvalidValue(field, value, f"is longer than {max_length} characters")
    # isprintable() is C and true of nearly every name; only the rest need the slower search.
    if not text.isprintable() and CONTROL_CHARACTERS.search(text):
        raise InvalidValue(field, value, "must not contain control characters (tabs, line breaks and the like)")
    return text or None


def optional_code(field: str, value: Any) -> str | None:
    """A short text from a source (a status, a grade, a programme number)."""
    return optional_text(field, value, CODE_LENGTH)


def free_text(field: str, value: Any, max_length: int) -> str | None:
    """Text a person typed: trimmed, at most ``max_length`` characters, no control characters;
    None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(field, value, "must be text")
    text = value.strip()
    if CONTROL_CHARACTERS.search(text):
        raise InvalidValue(field, value, "must not contain control characters (tabs, line breaks and the like)")
    if len(text) > max_length:
        raise InvalidValue(field, value, f"is longer than {max_length} characters")
    return text or None


def record_id(field: str, value: Any) -> int:
    """A record's own number (a TIS person's id): a whole number from 1 to 2^63 - 1, written
    with ASCII digits if written as text."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidValue(field, value, "must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > MAX_WHOLE_NUMBER_DIGITS:
            raise InvalidValue(field, value, "must be a whole number written with the digits 0-9")
        value = int(text)
    if not 1 <= value <= MAX_RECORD_ID:
        raise InvalidValue(field, value, f"must be between 1 and {MAX_RECORD_ID}")
    return value


def opaque_id(field: str, value: Any) -> int | str | None:
    """An identifier Reval only carries (a programme membership's, a placement's): a whole number
    or a text such as a UUID, as the source wrote it."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise InvalidValue(field, value, "must be a whole number or a text")
    if isinstance(value, int):
        if abs(value) > MAX_RECORD_ID:
            raise InvalidValue(field, value, "is too large a number")
        return value
    return optional_code(field, value)


def iso_date(field: str, value: Any) -> date:
    """An ISO 8601 calendar date, ``YYYY-MM-DD`` (TIS's format), from 1900-01-01 to 9999-12-31."""
    if isinstance(value, str):
        text = value if len(value) == ISO_DATE_LENGTH else value.strip()
        # Dashes where YYYY-MM-DD has them, and ASCII: fromisoformat also takes week dates
        # (2026-W01-1) and compact ones (20260101), which TIS never sends.
        if len(text) == ISO_DATE_LENGTH and text[4] == "-" and text[7] == "-" and text.isascii():
            try:
                day = date.fromisoformat(text)
            except ValueError:
                pass
            else:
                if day >= EARLIEST_DATE:
                    return day
                raise InvalidValue(field, value, f"is before {EARLIEST_DATE.isoformat()}")
    raise InvalidValue(field, value, "is not a date in the form YYYY-MM-DD")


def _not_too_early(field: str, value: Any, day: date) -> date:
    if day < EARLIEST_DATE:
        raise InvalidValue(field, value, f"is before {EARLIEST_DATE.isoformat()}")
    return day


def optional_iso_date(field: str, value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return iso_date(field, value)


def optional_gmc_date(field: str, value: Any) -> date | None:
    """GMC Connect's ``dd/MM/yyyy`` date strings; GMC sends empty strings for 'no date'."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        # Split by hand: strptime costs several times more, and this runs for every GMC doctor.
        day, _, rest = text.partition("/")
        month, _, year = rest.partition("/")
        digits = day + month + year
        if (
            len(day) == len("DD")
            and len(month) == len("MM")
            and len(year) == len("YYYY")
            and digits.isascii()
            and digits.isdigit()
        ):
            try:
                parsed = date(int(year), int(month), int(day))
            except ValueError:
                pass
            else:
                return _not_too_early(field, value, parsed)
    raise InvalidValue(field, value, "is not a date in the form dd/MM/yyyy")


def enumeration(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``, matched case-insensitively and returned in its canonical spelling."""
    if isinstance(value, str):
        match = _canonical_spellings(allowed).get(value.strip().lower())
        if match is not None:
            return match
    raise InvalidValue(field, value, f"must be one of {', '.join(allowed)}")


@cache
def _canonical_spellings(allowed: tuple[str, ...]) -> dict[str, str]:
    return {choice.lower(): choice for choice in allowed}


def optional_enumeration(field: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return enumeration(field, value, allowed)


def date_range(field_from: str, start: date | None, field_to: str, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidValue(field_to, end.isoformat(), f"is before {field_from} {start.isoformat()}")


def list_of_objects(field: str, value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidValue(field, value, "must be a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidValue(f"{field}[{index}]", item, "must be an object")
    return value


def require_object(field: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise InvalidValue(field, value, "must be an object")
    return value


FieldRule = Callable[[str, Any], Any]

# Values a bulk reader stops remembering beyond, per rule: a national snapshot repeats a few
# thousand dates, programmes, owners and grades, and this bounds what a stream of unique ones costs.
REMEMBERED_VALUES = 20_000


class FieldReader:
    """Applies a record's field rules in bulk (a national snapshot: hundreds of thousands of
    records), remembering what each rule made of each text it has passed: the same dates,
    programme names, owners and grades come again and again, and looking a text up costs far
    less than checking it. A rule's result for a value never depends on the field it came in
    (only its error message does, and values that fail are never remembered); identifiers
    (``unique``), different in every record, are always checked.
    """

    def __init__(self, rules: Iterable[tuple[str, str, FieldRule]], unique: Iterable[FieldRule] = ()):
        """``rules``: (the field as the source names it, the name read into, its rule)."""
        unique = set(unique)
        # Each rule's results by the text it was given (None: not remembered, each value unique).
        self._fields: list[tuple[str, str, FieldRule, dict[str, Any] | None]] = [
            (field, name, rule, None if rule in unique else {}) for field, name, rule in rules
        ]

    def read(self, raw: dict) -> dict[str, Any]:
        item = {}
        for field, name, rule, passed in self._fields:
            value = raw.get(field)
            if passed is not None and value.__class__ is str:
                result = passed.get(value, _NOT_SEEN)
                if result is _NOT_SEEN:
                    result = rule(field, value)
                    if len(passed) < REMEMBERED_VALUES:
                        passed[value] = result
            else:
                result = rule(field, value)
            item[name] = result
        return item


_NOT_SEEN = object()


class Rule(fields.Field):
    """A marshmallow field that applies one of the rules above, so schemas and bulk readers agree."""

    def __init__(self, rule, **kwargs):
        kwargs.setdefault("load_default", None)
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)
        self.rule = rule

    def deserialize(self, value, attr=None, data=None, **kwargs):
        # The rule, not marshmallow, decides what a missing or null value means.
        if value is missing_:
            value = None
        try:
            return self.rule(self.data_key or attr, value)
        except InvalidValue as error:
            raise ValidationError(str(error)) from None
