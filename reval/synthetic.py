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


# Scenarios by what they make of a doctor, for the shape's shares.
GMC_ONLY = ("NOT_IN_TIS",)  # connected at GMC, no TIS person
TIS_ONLY = ("NOT_CONNECTED", "PREVIOUSLY_CONNECTED", "NO_PROGRAMME_NOT_CONNECTED", "NO_GMC_NUMBER")
DISCREPANCIES = (
    "DB_MISMATCH",
    "NOT_CONNECTED",
    "PROGRAMME_EXPIRED",
    "NO_CURRENT_PROGRAMME",
    "NOT_IN_TIS",
    "INACTIVE_IN_TIS",
    "UNKNOWN_PROGRAMME_OWNER",
    "OVERLAPPING_PROGRAMMES",
    "DUPLICATE_GMC_NUMBER",
)


def _share(scenarios: tuple[str, ...]) -> float:
    return sum(SCENARIOS[name] for name in scenarios) / sum(SCENARIOS.values())


@dataclass(frozen=True)
class Shape:
    """What each doctor's records look like, and how the doctors fall among the queues.

    The default is the bench's own data. Memberships and placements count each TIS person's;
    a scenario's own programmes (a current one, say) are always there and the rest, up to
    ``memberships``, are ended (``ended_share`` of them) or yet to start, so the extra ones never
    change a decision. The shares are of doctor slots, so of the doctors decided, roughly."""

    memberships: int = 2
    placements: int = 3
    curricula: int = 1
    ended_share: float = 1.0
    tis_only_share: float = round(_share(TIS_ONLY), 4)
    gmc_only_share: float = round(_share(GMC_ONLY), 4)
    discrepancy_share: float = round(_share(DISCREPANCIES), 4)

    def __post_init__(self) -> None:
        for name, low in (("memberships", 1), ("placements", 1), ("curricula", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, not {getattr(self, name)}")
        for name in ("ended_share", "tis_only_share", "gmc_only_share", "discrepancy_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, not {getattr(self, name)}")
        self.scenario_weights()  # refuses shares that cannot add up, now

    def scenario_weights(self) -> dict[str, float]:
        """Each scenario's weight, scaled so that each group makes its share of the doctors."""
        if (self.tis_only_share, self.gmc_only_share, self.discrepancy_share) == (
            Shape.tis_only_share,
            Shape.gmc_only_share,
            Shape.discrepancy_share,
        ):
            return dict(SCENARIOS)  # exactly the bench's own draws, seed for seed
        total = sum(SCENARIOS.values())
        weights = {name: weight / total for name, weight in SCENARIOS.items()}
        _scale(weights, TIS_ONLY, self.tis_only_share)
        _scale(weights, GMC_ONLY, self.gmc_only_share)
        rest = tuple(name for name in DISCREPANCIES if name not in TIS_ONLY + GMC_ONLY)
        fixed = sum(weights[name] for name in DISCREPANCIES if name not in rest)
        if self.discrepancy_share < fixed:
            raise ValueError(
                f"a discrepancy share of {self.discrepancy_share} is less than the GMC-only doctors and TIS-only "
                f"doctors in a programme make already ({fixed:.3f})"
            )
        _scale(weights, rest, self.discrepancy_share - fixed)
        weights["CONNECTED"] = 0.0
        weights["CONNECTED"] = 1 - sum(weights.values())
        if weights["CONNECTED"] < 0:
            raise ValueError("the TIS-only, GMC-only and discrepancy shares add up to more than every doctor")
        return weights


def _scale(weights: dict[str, float], scenarios: tuple[str, ...], share: float) -> None:
    factor = share / sum(weights[name] for name in scenarios)
    for name in scenarios:
        weights[name] *= factor


DEFAULT_SHAPE = Shape()
# The dataset of issue 26: about 40% of doctors in Discrepancies, a tenth of TIS people with no
# GMC connection, some GMC doctors missing from TIS, and more records per person to decide on.
SHAPES = {
    "default": DEFAULT_SHAPE,
    "heavy": Shape(
        memberships=2, placements=3, curricula=2, tis_only_share=0.1, gmc_only_share=0.05, discrepancy_share=0.4
    ),
}


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


def generate(
    directory: Path, doctors: int, as_of: date, seed: int = 2026, shape: Shape = DEFAULT_SHAPE
) -> SyntheticDataset:
    """Writes both nights' snapshots for about ``doctors`` GMC-connected doctors of this shape.

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
    names, weights = zip(*shape.scenario_weights().items(), strict=True)
    connected_share = sum(w for n, w in zip(names, weights, strict=True) if _connected_now(n)) / sum(weights)
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
            doctor = _Doctor(rng, number, as_of, bodies, shape)
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
    def __init__(self, rng: random.Random, number: str, as_of: date, bodies: list[str], shape: Shape = DEFAULT_SHAPE):
        self.rng, self.number, self.as_of, self.bodies, self.shape = rng, number, as_of, bodies, shape
        self.foundation: dict[str, Any] | None = None
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
                    "curriculumName": specialty if index == 0 else f"{specialty} {index + 1}",
                    "curriculumStartDate": start.isoformat(),
                    "curriculumEndDate": end.isoformat(),
                }
                for index in range(self.shape.curricula)
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
        past = self.shape.placements - 1
        placements = placements[:past] + [self._earlier_placement(years) for years in range(1, past - 1)]
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

    def _earlier_placement(self, years: int) -> dict[str, Any]:
        return {
            "id": self.rng.randint(1, 10**9),
            "gradeAbbreviation": "F1",
            "dateFrom": self.days(-1100 - 365 * years, -1000 - 365 * years).isoformat(),
            "dateTo": self.days(-999 - 365 * years, -900 - 365 * years).isoformat(),
        }

    def _memberships(self, programmes: list) -> list:
        """The scenario's programmes with as many more (or fewer) as the shape has beyond the
        default: ended ones from earlier training or ones yet to start, which decide nothing."""
        extra = self.shape.memberships - DEFAULT_SHAPE.memberships
        if extra < 0:
            return [programme for programme in programmes if programme is not self.foundation] or programmes[:1]
        return programmes + [
            self.programme(
                self.other_body().owner, state="ended" if self.rng.random() < self.shape.ended_share else "future"
            )
            for _ in range(extra)
        ]

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
            "programmeMemberships": programmes if self.shape is DEFAULT_SHAPE else self._memberships(programmes),
            "placements": self.placements(grade),
        }

    def build(self, scenario: str, person_id: int) -> tuple[list[dict], str | None, str | None]:
        """(TIS people, GMC body now, GMC body the night before) for this doctor."""
        home = self.home.owner
        foundation = self.foundation = self.programme(self.other_body().owner, state="ended")
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
        programme = self.programme(home)
        bad = self.person(person_id, [foundation, programme])
        programme["programmeStartDate"] = "31/02/2025"
        return [bad], None, None
