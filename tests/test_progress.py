"""Progress on standard error: a line per phase in a log, a line redrawn in place on a terminal."""

from __future__ import annotations

import io

from reval.cli.progress import TerminalProgress
from tests.factories import AS_OF, WESSEX, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot


def snapshot_files(files):
    people = [person(f"{1_000_000 + i:07d}", programme(WESSEX), person_id=i + 1) for i in range(30)]
    gmc = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor(p["gmcNumber"]) for p in people]})
    return gmc, tis_snapshot(files / "tis.jsonl", people, jsonl=True)


def test_a_sync_reports_each_phase_on_standard_error_with_its_name_first(reval, files):
    gmc, tis = snapshot_files(files)
    result = reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat(), "--json")
    lines = result.stderr.splitlines()
    assert [line.split()[0] for line in lines] == ["GMC", "TIS", "decide"]
    assert lines[0].startswith("GMC     30 doctors in ") and lines[1].startswith("TIS     30 people in ")
    assert lines[2].startswith("decide  30 doctors in ")
    assert "\r" not in result.stderr  # not a terminal: no redrawing
    assert result.stdout.lstrip().startswith("{")  # the summary stays alone on standard output


def test_quiet_silences_progress_but_not_the_summary(reval, files):
    gmc, tis = snapshot_files(files)
    result = reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat(), "--quiet")
    assert result.stderr == ""
    assert "Sync run" in result.stdout


def test_on_a_terminal_a_phase_is_redrawn_with_its_rate_and_time_left():
    stream, now = io.StringIO(), [100.0]
    progress = TerminalProgress(stream, interactive=True, clock=lambda: now[0])
    progress.begin("TIS", "people")
    now[0] += 2
    progress.advance(20_000, fraction=0.25)
    now[0] += 6
    progress.end(80_000)
    drawn = stream.getvalue()
    assert "\rTIS     20,000 people, 10,000/s, about 6 s left\x1b[K" in drawn
    assert drawn.endswith("\rTIS     80,000 people in 8.0 s (10,000/s)\x1b[K\n")
