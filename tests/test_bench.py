"""`reval bench`: data of each shape, and pages timed over HTTP beside a floor page."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from reval.cli.demo import format_http_pages
from reval.synthetic import DEFAULT_SHAPE, SCENARIOS, SHAPES, Shape, generate
from tests.conftest import assert_one_line_refusal
from tests.factories import AS_OF


def _people(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_default_shape_draws_the_bench_s_own_scenarios():
    assert DEFAULT_SHAPE.scenario_weights() == SCENARIOS
    assert SHAPES["default"] == Shape()


def test_a_shape_sets_memberships_placements_and_curricula_per_person(tmp_path):
    shape = Shape(memberships=4, placements=5, curricula=3, ended_share=0.5)
    dataset = generate(tmp_path, 300, AS_OF, seed=5, shape=shape)
    connected = [
        person
        for person in _people(dataset.tis)
        if len(person["placements"]) == 5 and person["status"] == "CURRENT"  # a current grade: the typical doctor
    ]
    assert connected
    for person in connected:
        memberships = person["programmeMemberships"]
        assert len(memberships) >= 4 - 1  # the scenario's own, with two more of earlier or later training
        assert all(len(m["curricula"]) == 3 for m in memberships)
    states = {m["programmeEndDate"] < AS_OF.isoformat() for p in connected for m in p["programmeMemberships"][2:]}
    assert states == {True, False}  # the extra ones both ended and yet to start


def test_the_heavy_shape_puts_its_shares_of_doctors_in_discrepancies_and_in_one_source_only(tmp_path):
    heavy = SHAPES["heavy"]
    dataset = generate(tmp_path / "heavy", 4000, AS_OF, seed=9, shape=heavy)
    default = generate(tmp_path / "default", 4000, AS_OF, seed=9)
    slots = sum(dataset.scenarios.values())
    assert dataset.scenarios["NOT_IN_TIS"] / slots == pytest.approx(heavy.gmc_only_share, abs=0.015)
    tis_only = sum(
        dataset.scenarios[name]
        for name in ("NOT_CONNECTED", "PREVIOUSLY_CONNECTED", "NO_PROGRAMME_NOT_CONNECTED", "NO_GMC_NUMBER")
    )
    assert tis_only / slots == pytest.approx(heavy.tis_only_share, abs=0.02)
    assert dataset.scenarios["CONNECTED"] < default.scenarios["CONNECTED"]
    assert all(len(m["curricula"]) == 2 for p in _people(dataset.tis) for m in p["programmeMemberships"])


def test_bench_runs_the_heavy_shape_with_its_discrepancies(reval):
    figures = json.loads(reval("bench", "--doctors", "400", "--shape", "heavy", "--json", "--quiet").output)
    assert figures["shape"]["discrepancy_share"] == 0.4
    assert figures["queues"]["DISCREPANCY"] / figures["decided"] == pytest.approx(0.4, abs=0.08)
    overridden = json.loads(
        reval("bench", "--doctors", "200", "--shape", "heavy", "--curricula", "1", "--json", "--quiet").output
    )
    assert overridden["shape"] == {**figures["shape"], "curricula": 1}


@pytest.mark.parametrize(
    "options, named",
    [
        (["--discrepancy-share", "0.9", "--tis-only-share", "0.5"], "more than every doctor"),
        (["--memberships", "0"], "memberships must be at least 1"),
        (["--ended-share", "1.5"], "ended share must be between 0 and 1, not 1.5"),
        (["--discrepancy-share", "0.01"], "discrepancy share of 0.01"),
        (["--pages", "--workers", "2"], "run it without --workers"),
    ],
)
def test_a_shape_that_cannot_be_made_is_refused_in_one_line(reval, options, named):
    assert_one_line_refusal(reval("bench", "--doctors", "100", *options, expect_exit=2), 2, named)


def test_bench_pages_times_a_real_server_beside_its_floor_page(reval):
    figures = json.loads(reval("bench", "--doctors", "300", "--pages", "--json", "--quiet").output)
    pages = figures["httpPages"]
    assert pages["workers"] >= 1
    assert pages["floor"]["oneClient"]["floor"]["p95Ms"] > 0
    one_client = pages["reval"]["oneClient"]
    assert {"discrepancies", "sortedBy_programme", "sortedBy_changed", "apiDoctors", "apiDoctor"} <= one_client.keys()
    assert pages["oneClientP95ToFloor"]["discrepancies"] == pytest.approx(
        one_client["discrepancies"]["p95Ms"] / pages["floor"]["oneClient"]["floor"]["p95Ms"], rel=0.01
    )
    for side in ("floor", "reval"):
        assert pages[side]["concurrent"]["clients"] == 16
        assert pages[side]["concurrent"]["requestsPerSecond"] > 0
    assert pages["concurrentThroughputToFloor"] > 0

    text = format_http_pages(pages)
    assert "pages over HTTP" in text and "16 clients at once" in text
