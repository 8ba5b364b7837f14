"""A sync whose decisions are split into shards decides exactly as one that is not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES
from reval.models import Base, DoctorEvent, SyncRun
from reval.reconcile.decisions import gmc_number_ranges, shards_of_ranges
from reval.reconcile.reference import replace_designated_bodies
from reval.reconcile.sync import GmcInput, TisInput, run_sync, run_sync_sharded
from reval.snapshot_files import open_snapshot
from reval.synthetic import generate
from tests.factories import AS_OF, exported


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), 400, AS_OF, seed=7)


def inputs(dataset, gmc_path):
    return dict(
        gmc=GmcInput("gmc", open_snapshot(gmc_path, label="GMC", list_key="designatedBodies")),
        tis=TisInput("tis", open_snapshot(dataset.tis, label="TIS", list_key="people")),
    )


def two_nights(sessions, dataset, shards: int | None):
    """The previous night, then tonight; returns every decision and every doctor's history."""
    for gmc_path, as_of in ((dataset.previous_gmc, AS_OF - timedelta(days=1)), (dataset.gmc, AS_OF)):
        if shards is None:
            run_sync(sessions, as_of=as_of, **inputs(dataset, gmc_path))
        else:
            run_sync_sharded(sessions, as_of=as_of, shards=shards, **inputs(dataset, gmc_path))
    return two_nights_state(sessions)


def two_nights_state(sessions):
    """Every decision, every doctor's history and each run's status."""
    decisions = exported(sessions)
    with sessions.begin() as session:
        history = sorted(
            (e.gmc_number, e.source, e.kind, repr(e.old), repr(e.new), e.detail, e.as_of)
            for e in session.scalars(select(DoctorEvent))
        )
        statuses = [run.status for run in session.scalars(select(SyncRun).order_by(SyncRun.id))]
    return decisions, history, statuses


def empty(sessions):
    with sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        replace_designated_bodies(session, DEFAULT_DESIGNATED_BODIES)


@pytest.mark.parametrize("shards", [1, 3, 100])
def test_sharded_decisions_and_history_match_a_single_sync(sessions, dataset, shards):
    single = two_nights(sessions, dataset, None)
    empty(sessions)
    sharded = two_nights(sessions, dataset, shards)
    assert len(single[0]) > 300 and len(single[1]) > 600  # a dataset worth comparing
    assert sharded[0] == single[0]
    assert sharded[1] == single[1]
    assert sharded[2] == single[2] == ["SUCCEEDED", "SUCCEEDED"]


def test_a_shard_run_twice_decides_nothing_twice(sessions, dataset):
    from reval.reconcile.sync import apply_run_sources, decide_shard, finish_sharded_run

    run_id = apply_run_sources(sessions, as_of=AS_OF, **inputs(dataset, dataset.gmc))
    [group] = shards_of_ranges(1)
    first = decide_shard(sessions, run_id, group)
    again = decide_shard(sessions, run_id, group)  # a redelivered task
    assert first["decided"] > 300 and again["decided"] == 0
    summary = finish_sharded_run(sessions, run_id, [first, again])
    assert summary["doctorsDecided"] == first["decided"] and summary["status"] == "SUCCEEDED"


def test_shards_cover_every_range_once():
    for count in (1, 2, 7, 100, 500):
        groups = shards_of_ranges(count)
        assert [r for group in groups for r in group] == list(gmc_number_ranges())
        assert max(map(len, groups)) - min(map(len, groups)) <= 1


def test_a_sharded_runs_sources_are_analyzed_before_its_shards_read_them(sessions, dataset):
    from reval.reconcile.sync import apply_run_sources, decide_shard, finish_sharded_run, refresh_statistics_after

    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics; SQLite plans from its indexes alone")
    sources = ("gmc_connection", "tis_person", "rejected_tis_person")

    def analyses() -> dict[str, int]:
        with engine.connect() as connection:
            counts = dict(connection.exec_driver_sql("SELECT relname, analyze_count FROM pg_stat_user_tables").all())
        return {table: counts[table] for table in (*sources, "doctor")}

    before = analyses()
    run_id = apply_run_sources(sessions, as_of=AS_OF, **inputs(dataset, dataset.gmc))
    applied = analyses()
    assert all(applied[table] == before[table] + 1 for table in sources) and applied["doctor"] == before["doctor"]
    [group] = shards_of_ranges(1)
    refresh_statistics_after(sessions, finish_sharded_run(sessions, run_id, [decide_shard(sessions, run_id, group)]))
    finished = analyses()
    assert {table: finished[table] for table in sources} == {table: applied[table] for table in sources}  # not again
    assert finished["doctor"] == before["doctor"] + 1
