"""A page of anything listed a page at a time by offset (a queue, the access audit, the FHIR
search): what is on it, how many there are in all, and which page of how many it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reval.refusals import Invalid

T = TypeVar("T")
MAX_NUMBER_DIGITS = 9  # page numbers and sizes: more digits than any page there is


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def checked_page(page: Any) -> int:
    """A page number as asked for (a number or its text): 1 or more, or refused naming it."""
    number = whole_number(page, "page")
    if number < 1:
        raise Invalid(f"page {page!r} is not 1 or more", field="page")
    return number


def whole_number(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, str)
        and value.strip().isascii()
        and value.strip().isdigit()
        and len(value.strip()) <= MAX_NUMBER_DIGITS
    ):
        return int(value)
    raise Invalid(f"{name} {value!r} is not a whole number", field=name)
