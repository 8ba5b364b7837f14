"""A sync that fetched nothing is never called a success: GMC giving no designated body's list
is PARTIAL with an operator alert, and with TIS giving nobody as well the run FAILS, changing nothing."""

from __future__ import annotations

import json
import logging

import pytest

from tests.factories import AS_OF, EAST_OF_ENGLAND, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

EMPTY_GMC = {"zero bytes": b"", "no bodies": b'{"designatedBodies": []}', "a blank line": b"\n"}


def gmc_file(files, content: bytes):
    gmc = files / ("gmc.json" if content.startswith(b"{") else "gmc.jsonl")
    gmc.write_bytes(content)
    return gmc


def sync(reval, gmc, tis, expect_exit: int = 0):
    args = (
        ["sync", "--as-of", AS_OF.isoformat(), "--json"]
        + (["--gmc-file", gmc] if gmc else [])
        + (["--tis-file", tis] if tis else [])
    )
    return reval(*args, expect_exit=expect_exit)


def runs(reval) -> list[dict]:
    return json.loads(reval("runs", "--format", "json").stdout)


@pytest.mark.parametrize("content", EMPTY_GMC.values(), ids=EMPTY_GMC.keys())
def test_a_gmc_source_with_no_body_is_partial_and_alerts_an_operator(reval, files, caplog, content):
    gmc = gmc_file(files, content)
    tis = tis_snapshot(files / "tis.json", [person("1000001", programme(EAST_OF_ENGLAND), person_id=1)])
    caplog.set_level(logging.WARNING)
    summary = json.loads(sync(reval, gmc, tis).stdout)
    assert summary["status"] == "PARTIAL"
    assert summary["gmc"]["designatedBodiesFetched"] == []
    assert any("OPERATOR ALERT" in r.getMessage() and "no designated body" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("content", EMPTY_GMC.values(), ids=EMPTY_GMC.keys())
def test_nothing_from_either_source_fails_the_run_and_changes_nothing(reval, files, content):
    first_gmc = gmc_snapshot(files / "first-gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")]})
    first_tis = tis_snapshot(files / "first-tis.json", [person("1000001", programme(EAST_OF_ENGLAND), person_id=1)])
    sync(reval, first_gmc, first_tis)
    before = json.loads(reval("export").stdout)
    gmc = gmc_file(files, content)
    tis = files / "tis.json"
    tis.write_text('{"people": []}')
    result = sync(reval, gmc, tis, expect_exit=1)
    assert "failed and changed nothing" in result.output and "gave no designated body's list" in result.output
    assert runs(reval)[0]["status"] == "FAILED"
    assert json.loads(reval("export").stdout) == before
