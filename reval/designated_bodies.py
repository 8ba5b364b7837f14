"""Designated bodies: the reference table, its CSV form, and programme owner -> body mapping."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DesignatedBody:
    code: str
    name: str
    owner: str  # the programme owner name TIS uses for this body


def find_designated_body(bodies: Iterable[DesignatedBody], code: str | None) -> DesignatedBody | None:
    """The body whose code is ``code`` in any letter case (spaces around it ignored), or None."""
    wanted = (code or "").strip().upper()
    return next((body for body in bodies if body.code.upper() == wanted), None)


def _same_name(code: str, name: str) -> DesignatedBody:
    return DesignatedBody(code, name, name)


DEFAULT_DESIGNATED_BODIES: tuple[DesignatedBody, ...] = (
    _same_name("1-1RUZV1D", "Kent, Surrey and Sussex"),
    _same_name("1-1RUZV6H", "North West London"),
    _same_name("1-1RUZV4H", "North Central and East London"),
    _same_name("1-1RSSQ5L", "South London"),
    _same_name("1-1RSSPZ7", "East Midlands"),
    _same_name("1-1RSSQ05", "East of England"),
    _same_name("1-1RSSQ1B", "North East"),
    _same_name("1-1RSSQ6R", "Thames Valley"),
    _same_name("1-1RSG4X0", "Yorkshire and the Humber"),
    _same_name("1-1RUZUYF", "West Midlands"),
    _same_name("1-1RUZUVB", "South West"),
    _same_name("1-1RUZUSF", "Wessex"),
    _same_name("1-1RSSQ2H", "North West"),
    _same_name("1-25U-830", "Northern Ireland Medical and Dental Training Agency"),
)


class DesignatedBodyFileError(Exception):
    """The CSV cannot be used as the set of designated bodies; nothing is replaced."""


def read_designated_bodies_csv(path: str | Path) -> list[DesignatedBody]:
    path = Path(path)
    rows = _csv_rows(path)
    bodies = []
    for line, (code, name, owner, *_rest) in enumerate(rows, start=2):
        if not code or not name or not owner:
            raise DesignatedBodyFileError(
                f"designated bodies file '{path}' line {line}: code, name and owner are all required"
            )
        bodies.append(DesignatedBody(code, name, owner))
    check_unique(bodies, source=f"designated bodies file '{path}'")
    if not bodies:
        raise DesignatedBodyFileError(f"designated bodies file '{path}' lists no designated bodies")
    return bodies


def _csv_rows(path: Path) -> list[list[str]]:
    """The file's rows, each value stripped, once its header is known to be code,name,owner."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [column.strip().lower() for column in reader.fieldnames or []]
            if header[:3] != ["code", "name", "owner"]:
                raise DesignatedBodyFileError(
                    f"designated bodies file '{path}' must have the header code,name,owner (got {','.join(header)!r})"
                )
            return [[(value or "").strip() for value in row.values()] for row in reader]
    except OSError as error:
        raise DesignatedBodyFileError(f"designated bodies file '{path}' cannot be read: {error.strerror}") from None


def check_unique(bodies: Iterable[DesignatedBody], source: str) -> None:
    codes: set[str] = set()
    owners: set[str] = set()
    for body in bodies:
        if body.code.upper() in codes:
            raise DesignatedBodyFileError(f"{source}: code {body.code!r} is listed twice")
        if body.owner.casefold() in owners:
            raise DesignatedBodyFileError(f"{source}: owner {body.owner!r} is listed twice")
        codes.add(body.code.upper())
        owners.add(body.owner.casefold())


class OwnerDirectory:
    """Maps TIS programme owner names to designated body codes: exact name, any case."""

    def __init__(self, bodies: Iterable[DesignatedBody]):
        self._by_owner = {body.owner.casefold(): body.code for body in bodies}
        self.codes = frozenset(self._by_owner.values())

    def designated_body_for(self, owner: str | None) -> str | None:
        return None if owner is None else self._by_owner.get(owner.casefold())
