"""A synthetic national dataset: GMC and TIS snapshots that exercise every rule, from a seed.

Each doctor follows one scenario (a row of the rule table, or a data-quality problem), with dates
placed around the as-of date so the same seed gives the same queues on any day. Two nights are
written: ``previous`` (the night before) and ``current``; doctors who leave GMC's lists between
them show what HISTORIC means. Files are streamed, so a million doctors need little memory.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES

# scenario -> weight (per thousand doctor slots)
SCENARIOS = {
    "CONNECTED": 700,
    "DB_MISMATCH": 40,
    "NOT_CONNECTED": 50,
    "PROGRAMME_EXPIRED": 30,
    "NO_CURRENT_PROGRAMME": 10,
    "NOT_IN_TIS": 30,
    "INACTIVE_IN_TIS": 10,
    "UNKNOWN_PROGRAMME_OWNER": 10,
    "OVERLAPPING_PROGRAMMES": 10,
    "F1_DOCTOR": 40,
    "MILITARY_DOCTOR": 10,
    "DUPLICATE_GMC_NUMBER": 10,
    "PREVIOUSLY_CONNECTED": 15,
    "NO_PROGRAMME_NOT_CONNECTED": 10,
    "NO_GMC_NUMBER": 20,  # TIS people with 'unknown' GMC numbers: no decision
    "REJECTED": 5,  # records that fail validation: the data-quality log
}
# (TIS people, GMC body now, GMC body the night before): what a scenario builds for a doctor
Built = tuple[list[dict], str | None, str | None]
F1_CONNECTED_SHARE = 0.5  # F1 doctors GMC still lists as connected (wrongly)
UNKNOWN_OWNERS = ("London LETBs", "Health Education England Unknown")
FIRST_NAMES = ("Amara", "Ben", "Chloe", "Dev", "Eilidh", "Farah", "George", "Hana", "Isaac", "Jia", "Kofi", "Lucy")
LAST_NAMES = (
    "Adams",
    "Begum",
    "Chen",
    "Davies",
    "Evans",
    "Fraser",
    "Gill",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
)
SPECIALTIES = (
    "General Practice",
    "Core Surgical Training",
    "Internal Medicine",
    "Paediatrics",
    "Psychiatry",
    "Anaesthetics",
)


@dataclass
class SyntheticDataset:
    directory: Path
    as_of: date
    previous_gmc: Path
    gmc: Path
    tis: Path
    gmc_doctors: int = 0
    tis_people: int = 0
    scenarios: dict[str, int] = field(default_factory=dict)


def generate(directory: Path, doctors: int, as_of: date, seed: int = 2026) -> SyntheticDataset:
    """Writes both nights' snapshots for about ``doctors`` GMC-connected doctors.

    Both nights share one TIS snapshot; only GMC's lists differ between them."""
    directory.mkdir(parents=True, exist_ok=True)
    dataset = SyntheticDataset(
        directory,
        as_of,
        previous_gmc=directory / "gmc-previous.jsonl",
        gmc=directory / "gmc.jsonl",
        tis=directory / "tis.jsonl",
    )
    rng = random.Random(seed)
    names, weights = zip(*SCENARIOS.items(), strict=True)
    connected_share = sum(w for n, w in SCENARIOS.items() if _connected_now(n)) / sum(weights)
    slots = max(len(names), round(doctors / connected_share))
    bodies = [body.code for body in DEFAULT_DESIGNATED_BODIES]
    with (
        _GmcWriter(directory, "previous") as previous_gmc,
        _GmcWriter(directory, "current") as current_gmc,
        dataset.tis.open("wb") as tis,
    ):
        person_id = 100000
        for index in range(slots):
            scenario = names[index] if index < len(names) else rng.choices(names, weights)[0]
            dataset.scenarios[scenario] = dataset.scenarios.get(scenario, 0) + 1
            number = f"{1000000 + (index * 7919 + seed) % 9000000:07d}"
            doctor = _Doctor(rng, number, as_of, bodies)
            people, gmc_now, gmc_before = doctor.build(scenario, person_id)
            person_id += len(people) + 1
            for person in people:
                tis.write(orjson.dumps(person) + b"\n")
            dataset.tis_people += len(people)
            record = doctor.gmc_record()  # the same details on both nights
            if gmc_now:
                current_gmc.add(gmc_now, record)
                dataset.gmc_doctors += 1
            if gmc_before:
                previous_gmc.add(gmc_before, record)
    return dataset


def _connected_now(scenario: str) -> bool:
    return scenario not in ("NOT_CONNECTED", "PREVIOUSLY_CONNECTED", "NO_PROGRAMME_NOT_CONNECTED", "NO_GMC_NUMBER")


class _GmcWriter:
    """Streams each body's doctors to a part file, then joins them into one line per body."""

    def __init__(self, directory: Path, night: str):
        self.directory = directory
        self.target = directory / ("gmc.jsonl" if night == "current" else f"gmc-{night}.jsonl")
        self.parts_dir = directory / f"parts-{night}"
        self.parts: dict[str, IO[bytes]] = {}

    def __enter__(self) -> _GmcWriter:
        self.parts_dir.mkdir(exist_ok=True)
        return self

    def add(self, body: str, record: dict[str, Any]) -> None:
        part = self.parts.get(body)
        if part is None:
            part = self.parts[body] = (self.parts_dir / f"{body}.part").open("wb+")
        else:
            part.write(b",")
        part.write(orjson.dumps(record))

    def __exit__(self, *exc) -> None:
        with self.target.open("wb") as out:
            for body in sorted(code.code for code in DEFAULT_DESIGNATED_BODIES):
                out.write(b'{"designatedBodyCode":"' + body.encode() + b'","doctors":[')
                part = self.parts.get(body)
                if part is not None:
                    part.seek(0)
                    shutil.copyfileobj(part, out)
                    part.close()
                out.write(b"]}\n")
        shutil.rmtree(self.parts_dir)


class _Doctor:
    def __init__(self, rng: random.Random, number: str, as_of: date, bodies: list[str]):
        self.rng, self.number, self.as_of, self.bodies = rng, number, as_of, bodies
        self.first, self.last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        self.home = rng.choice(DEFAULT_DESIGNATED_BODIES)

    def days(self, low: int, high: int) -> date:
        return self.as_of + timedelta(days=self.rng.randint(low, high))

    def other_body(self):
        return self.rng.choice([b for b in DEFAULT_DESIGNATED_BODIES if b.code != self.home.code])

    def gmc_record(self) -> dict[str, Any]:
        return {
            "GMCReferenceNumber": self.number,
            "DoctorFirstName": self.first,
            "DoctorLastName": self.last,
            "SubmissionDate": self.days(100, 1500).strftime("%d/%m/%Y"),
            "DateAdded": self.days(-1500, -30).strftime("%d/%m/%Y"),
            "UnderNotice": self.rng.choice(("No", "No", "No", "Yes")),
            "DoctorStatus": "Not Under Notice",
        }

    def programme(self, owner: str, kind: str = "SUBSTANTIVE", *, state: str = "current") -> dict[str, Any]:
        if state == "current":
            start, end = self.days(-900, -1), self.days(1, 1200)
        elif state == "ended":
            start, end = self.days(-1500, -800), self.days(-700, -1)
        else:  # future
            start, end = self.days(1, 200), self.days(400, 1500)
        specialty = self.rng.choice(SPECIALTIES)
        return {
            "id": self.rng.randint(1, 10**8),
            "programmeName": specialty,
            "programmeNumber": f"{owner[:3].upper()}{self.rng.randint(100, 999)}",
            "programmeMembershipType": kind,
            "programmeStartDate": start.isoformat(),
            "programmeEndDate": end.isoformat(),
            "programmeOwner": owner,
            "trainingPathway": "CCT",
            "curricula": [
                {
                    "curriculumName": specialty,
                    "curriculumStartDate": start.isoformat(),
                    "curriculumEndDate": end.isoformat(),
                }
            ],
        }

    def placements(self, current_grade: str | None = "ST2") -> list[dict[str, Any]]:
        placements = [
            {
                "id": self.rng.randint(1, 10**9),
                "gradeAbbreviation": "F2",
                "dateFrom": self.days(-1100, -900).isoformat(),
                "dateTo": self.days(-899, -700).isoformat(),
            },
            {
                "id": self.rng.randint(1, 10**9),
                "gradeAbbreviation": "ST1",
                "dateFrom": self.days(-699, -400).isoformat(),
                "dateTo": self.days(-399, -200).isoformat(),
            },
        ]
        if current_grade:
            placements.append(
                {
                    "id": self.rng.randint(1, 10**9),
                    "gradeAbbreviation": current_grade,
                    "dateFrom": self.days(-199, 0).isoformat(),
                    "dateTo": self.days(1, 300).isoformat(),
                }
            )
        return placements

    def person(
        self,
        person_id: int,
        programmes: list,
        *,
        number: str | None = None,
        status: str = "CURRENT",
        grade: str | None = "ST2",
    ) -> dict[str, Any]:
        return {
            "tisPersonId": person_id,
            "gmcNumber": number if number is not None else self.number,
            "forenames": self.first,
            "surname": self.last,
            "status": status,
            "programmeMemberships": programmes,
            "placements": self.placements(grade),
        }

    def build(self, scenario: str, person_id: int) -> tuple[list[dict], str | None, str | None]:
        """(TIS people, GMC body now, GMC body the night before) for this doctor."""
        home = self.home.owner
        foundation = self.programme(self.other_body().owner, state="ended")
        builder = getattr(self, f"_build_{scenario.lower()}", None) if scenario in SCENARIOS else None
        if builder is None:
            raise ValueError(f"unknown scenario {scenario!r}")
        return builder(person_id, home, foundation, self.home.code)

    # One builder a scenario: (person id, home owner, an ended foundation programme elsewhere,
    # the home body's code) -> (TIS people, GMC body now, GMC body the night before).

    def _build_connected(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home)])], connected, connected

    def _build_db_mismatch(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home)])], self.other_body().code, connected

    def _build_not_connected(self, person_id: int, home: str, foundation: dict, _connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home)])], None, None

    def _build_programme_expired(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        ended = self.programme(home, state="ended")
        return [self.person(person_id, [foundation, ended], grade=None)], connected, connected

    def _build_no_current_programme(self, person_id: int, home: str, _foundation: dict, connected: str) -> Built:
        return [self.person(person_id, [self.programme(home, state="future")], grade=None)], connected, connected

    def _build_not_in_tis(self, _person_id: int, _home: str, _foundation: dict, connected: str) -> Built:
        return [], connected, connected

    def _build_inactive_in_tis(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home)], status="INACTIVE")], connected, connected

    def _build_unknown_programme_owner(self, person_id: int, _home: str, foundation: dict, connected: str) -> Built:
        unknown = self.programme(self.rng.choice(UNKNOWN_OWNERS))
        return [self.person(person_id, [foundation, unknown])], connected, connected

    def _build_overlapping_programmes(self, person_id: int, home: str, _foundation: dict, connected: str) -> Built:
        second = self.programme(self.other_body().owner)
        return [self.person(person_id, [self.programme(home), second])], connected, connected

    def _build_f1_doctor(self, person_id: int, home: str, _foundation: dict, connected: str) -> Built:
        gmc = connected if self.rng.random() < F1_CONNECTED_SHARE else None
        programmes = [self.programme(home), self.programme(home, state="future")]
        return [self.person(person_id, programmes, grade="F1")], gmc, gmc

    def _build_military_doctor(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home, "MILITARY")])], connected, connected

    def _build_duplicate_gmc_number(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        twin = self.person(person_id + 1, [self.programme(self.other_body().owner, state="ended")], grade=None)
        return [self.person(person_id, [foundation, self.programme(home)]), twin], connected, connected

    def _build_previously_connected(self, person_id: int, home: str, foundation: dict, connected: str) -> Built:
        ended = self.programme(home, state="ended")
        return [self.person(person_id, [foundation, ended], grade=None)], None, connected

    def _build_no_programme_not_connected(self, person_id: int, home: str, foundation: dict, _connected: str) -> Built:
        return [self.person(person_id, [foundation, self.programme(home, state="ended")], grade=None)], None, None

    def _build_no_gmc_number(self, person_id: int, home: str, _foundation: dict, _connected: str) -> Built:
        placeholder = self.rng.choice(("unknown", "N/A", "na", ""))
        return [self.person(person_id, [self.programme(home)], number=placeholder)], None, None

    def _build_rejected(self, person_id: int, home: str, foundation: dict, _connected: str) -> Built:
        bad = self.person(person_id, [foundation, self.programme(home)])
        bad["programmeMemberships"][1]["programmeStartDate"] = "31/02/2025"
        return [bad], None, None
