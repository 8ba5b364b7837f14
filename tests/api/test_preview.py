"""GET /api/v1/rules/preview: the moves a sync as of a day would make, scoped by the caller's bodies."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH, EAST_NOT_CONNECTED

PREVIEW = "/api/v1/rules/preview"
LATER = (AS_OF + timedelta(days=301)).isoformat()  # every programme of the dataset has ended


def every_move(caller, query: str) -> list[dict]:
    moves, page = [], 1
    while True:
        answer = caller.get(f"{PREVIEW}?{query}&page={page}&pageSize=7")
        assert answer.status_code == 200, answer.json
        moves += answer.json["moves"]
        if page * 7 >= answer.json["total"]:
            return moves
        page += 1


def test_a_caller_sees_the_moves_its_bodies_see(calling):
    moves = every_move(calling(), f"asOf={LATER}")
    assert moves and all(EAST_OF_ENGLAND in move["designatedBodies"] for move in moves)
    numbers = {move["gmcReferenceNumber"] for move in moves}
    assert set(EAST_CONNECTED) <= numbers
    assert numbers <= set(EAST_CONNECTED + EAST_MISMATCH + EAST_NOT_CONNECTED)


def test_a_move_has_the_dry_runs_shape(calling):
    answer = calling().get(f"{PREVIEW}?asOf={LATER}&pageSize=1").json
    assert set(answer) == {"asOf", "ruleTable", "doctors", "moves", "total", "page", "pageSize"}
    assert answer["asOf"] == LATER and answer["ruleTable"].startswith("reval-default@")
    (move,) = answer["moves"]
    assert set(move) == {"gmcReferenceNumber", "from", "to", "designatedBodies"}
    assert set(move["from"]) == set(move["to"]) == {"queue", "reason"}


def test_a_national_caller_sees_every_bodys_moves(calling):
    moves = every_move(calling(scopes="reval.read reval.national", bodies=()), f"asOf={LATER}")
    assert {WESSEX, EAST_OF_ENGLAND} <= {body for move in moves for body in move["designatedBodies"]}


def test_the_pages_are_linked(calling):
    answer = calling().get(f"{PREVIEW}?asOf={LATER}&pageSize=5")
    assert 'rel="next"' in answer.headers["Link"] and answer.json["total"] > 5


def test_today_nobody_moves_and_the_default_is_today(calling):
    answer = calling().get(f"{PREVIEW}?asOf={AS_OF.isoformat()}").json
    assert answer["moves"] == [] and answer["total"] == 0 and answer["doctors"] > 0
    assert calling().get(PREVIEW).status_code == 200


def test_an_as_of_out_of_bounds_is_a_problem_naming_it(calling):
    answer = calling().get(f"{PREVIEW}?asOf=1999-12-31")
    assert answer.status_code == 422
    assert "1999-12-31" in answer.json["detail"]


def test_an_as_of_that_is_no_date_is_refused(calling):
    assert calling().get(f"{PREVIEW}?asOf=tomorrow").status_code == 422
    assert calling().get(f"{PREVIEW}?pageSize=0").status_code == 422
