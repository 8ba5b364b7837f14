"""A sync that shares its work with a helper process decides exactly as one that does not."""

from __future__ import annotations

import fcntl
import gc
import os
import subprocess
import sys
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from reval.models import Doctor, DoctorEvent, DoctorVisibility, DoctorVisibilityName, RejectedRecord
from reval.reconcile import decisions
from reval.reconcile import sync as sync_module
from reval.reconcile.common import BATCH_SIZE
from reval.reconcile.helper import BULK_WORK_GC_THRESHOLDS, PIPE_BYTES, SyncHelper
from reval.reconcile.sync import GmcInput, TisInput, run_sync
from reval.synthetic import generate
from tests.factories import AS_OF
from tests.reconcile.test_shards import empty, two_nights_state


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # Several batches of people and of doctors: enough work for the helper to take a share.
    return generate(tmp_path_factory.mktemp("synthetic"), BATCH_SIZE * 3, AS_OF, seed=11)


def two_nights(sessions, dataset, helper_process: bool):
    summaries = [
        run_sync(
            sessions,
            as_of=as_of,
            gmc=GmcInput.from_file(gmc_path),
            tis=TisInput.from_file(dataset.tis),
            helper_process=helper_process,
        )
        for gmc_path, as_of in ((dataset.previous_gmc, AS_OF - timedelta(days=1)), (dataset.gmc, AS_OF))
    ]
    with sessions.begin() as session:
        rejected = [
            (r.source, r.locator, r.record_key, r.field, r.message)
            for r in session.scalars(select(RejectedRecord).order_by(RejectedRecord.id))
        ]
    return summaries, rejected, two_nights_state(sessions)


def comparable(summary):
    return {
        key: value
        for key, value in summary.items()
        if key not in ("syncRunId", "startedAt", "finishedAt", "seconds", "helperProcess")
    }


def test_decisions_history_and_rejections_match_with_and_without_a_helper_process(sessions, dataset, monkeypatch):
    monkeypatch.setattr(sync_module, "LARGE_INPUT_BYTES", 0)  # start the helper with each sync
    alone_summaries, alone_rejected, alone = two_nights(sessions, dataset, helper_process=False)
    empty(sessions)
    shared_summaries, shared_rejected, shared = two_nights(sessions, dataset, helper_process=True)
    assert [s["helperProcess"] for s in alone_summaries] == [{"used": False, "batches": 0, "peakMemoryMiB": None}] * 2
    assert all(s["helperProcess"]["used"] and s["helperProcess"]["peakMemoryMiB"] > 10 for s in shared_summaries)
    assert sum(s["helperProcess"]["batches"] for s in shared_summaries) > 0  # work did cross to it
    assert alone_summaries[0]["doctors"] > 2 * BATCH_SIZE and alone_summaries[0]["tis"]["peopleRead"] > 2 * BATCH_SIZE
    assert len(alone_rejected) > 10  # the synthetic data's bad records, in the order they were read
    assert shared == alone
    assert shared_rejected == alone_rejected
    assert [comparable(s) for s in shared_summaries] == [comparable(s) for s in alone_summaries]


def written_rows(sessions):
    """Every doctor, what each body sees of them and every doctor's history in the order it was written."""
    with sessions.begin() as session:
        rows = {
            table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
            for table in (Doctor.__table__, DoctorVisibility.__table__, DoctorVisibilityName.__table__)
        }
        rows["history"] = [
            (e.gmc_number, e.source, e.kind, e.old, e.new, e.detail, e.as_of)
            for e in session.scalars(select(DoctorEvent).order_by(DoctorEvent.id))
        ]
    return rows


def test_new_doctors_rows_made_where_they_are_decided_match_the_general_path(sessions, dataset, monkeypatch):
    # The first night's doctors are all new to Reval, and their rows are made in the process that
    # decides them (the helper, or this one when it takes a batch); the second night's are not.
    monkeypatch.setattr(sync_module, "LARGE_INPUT_BYTES", 0)  # start the helper with each sync
    made_with_decisions = []
    write_new_doctors = decisions._write_new_doctors

    def noting_queues(*args):
        made_with_decisions.append(len(args[-1].queues))
        return write_new_doctors(*args)

    monkeypatch.setattr(
        decisions,
        "_write_new_doctors",
        noting_queues,
    )
    new_summaries, _, new_state = two_nights(sessions, dataset, helper_process=True)
    new_rows = written_rows(sessions)
    empty(sessions)
    monkeypatch.setattr(decisions, "NEW_DOCTOR_ROWS_WHERE_DECIDED", False)
    general_summaries, _, general_state = two_nights(sessions, dataset, helper_process=True)
    assert sum(made_with_decisions) == new_summaries[0]["doctors"] > 2 * BATCH_SIZE
    assert written_rows(sessions) == new_rows
    assert general_state == new_state
    assert [comparable(s) for s in general_summaries] == [comparable(s) for s in new_summaries]


def test_a_small_sync_starts_no_helper_process(sessions, tmp_path):
    # Its files are known to be small (under SMALL_INPUT_BYTES): a second's start-up would cost more than its work.
    small = generate(tmp_path, 50, AS_OF, seed=3)
    summary = run_sync(
        sessions, as_of=AS_OF, gmc=GmcInput.from_file(small.gmc), tis=TisInput.from_file(small.tis), helper_process=True
    )
    assert summary["helperProcess"] == {"used": False, "batches": 0, "peakMemoryMiB": None} and summary["doctors"] > 40


def offset_all(offset, numbers):
    if 13 in numbers:
        raise ValueError(f"batch with 13 (offset {offset})")
    return [number + offset for number in numbers]


def test_results_come_in_the_batches_order_whoever_worked_them_out():
    batches = [list(range(start, start + 50)) for start in range(20, 5020, 50)]
    with SyncHelper(use_process=True, start_now=True, preload=(__name__,)) as helper:
        helper.wait_until_up(timeout=60)
        results = list(helper.ordered(offset_all, 1000, ((batch, batch[0]) for batch in batches)))
        assert helper.batches_in_process > 0
    assert [first for first, _ in results] == [batch[0] for batch in batches]
    assert [result for _, result in results] == [[n + 1000 for n in batch] for batch in batches]


def worked_out(context, batch):
    log_path, step = context
    with open(log_path, "a") as log:  # one line per batch, from whichever process works it out
        log.write(f"{os.getpid()} {batch}\n")
    return f"{batch} with the {step} step's context"


def test_a_helper_left_idle_by_one_step_works_on_the_next_and_each_keeps_its_order(tmp_path):
    log = tmp_path / "worked.txt"
    with SyncHelper(use_process=True, start_now=True, preload=(__name__,)) as helper:
        helper.wait_until_up(timeout=60)
        later = helper.ordered(worked_out, (str(log), "later"), ((f"later {n}", n) for n in range(6)))
        first = helper.ordered(worked_out, (str(log), "first"), ((f"first {n}", n) for n in range(8)), when_idle=later)
        first_results = []
        first._queue_for_helper()  # as the first result is asked for, but with time to work them out
        while True:
            # This process takes longer over each result than the helper: it has worked out
            # everything it was given by the time the next result is asked for.
            wait_for_given(first)
            wait_for_given(later)
            result = next(first, None)
            if result is None:
                break
            first_results.append(result)
        wait_for_given(later)
        worked_before_asked = log.read_text()
        later_results = list(later)
    assert first_results == [(n, f"first {n} with the first step's context") for n in range(8)]
    assert later_results == [(n, f"later {n} with the later step's context") for n in range(6)]
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert sorted(batch for _, batch in lines) == sorted(
        [f"first {n}" for n in range(8)] + [f"later {n}" for n in range(6)]
    )
    # The helper was given batches of the later step while the first still had batches to give it.
    in_helper = [batch for pid, batch in lines if pid == helper_pid(lines)]
    assert in_helper.index("later 0") < in_helper.index("first 7")
    assert f"{helper_pid(lines)} later 0\n" in worked_before_asked


def wait_for_given(results) -> None:
    """Waits until the helper has worked out every batch of these results it was given."""
    for _, slot in results.slots:
        if isinstance(slot, Future):
            slot.result(timeout=60)


def helper_pid(lines) -> str:
    return next(pid for pid, _ in lines if pid != str(os.getpid()))


def test_the_pipes_to_and_from_the_helper_are_widened():
    # Through the kernel's default 64 KiB, the helper sat blocked on handing back each batch's
    # results while this process's main thread held the interpreter lock (see _widen_pipes).
    with SyncHelper(use_process=True, start_now=True) as helper:
        helper.wait_until_up(timeout=60)
        executor = helper._executor
        assert executor is not None
        # The executor's private pipes (typeshed declares neither _call_queue nor a queue's _reader).
        ends = (executor._result_queue._reader, executor._call_queue._writer)  # type: ignore[attr-defined]  # see above
        sizes = [fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) for end in ends]
    allowed = os.geteuid() == 0 or int(Path("/proc/sys/fs/pipe-max-size").read_text()) >= PIPE_BYTES
    assert sizes == [PIPE_BYTES if allowed else 64 * 1024] * 2


def garbage_collection_settings(_context, _batch):
    return gc.get_threshold(), gc.get_freeze_count()


def test_the_helper_collects_garbage_as_bulk_work_needs():
    # At Python's default thresholds the helper spent a tenth of a full sync collecting garbage.
    with SyncHelper(use_process=True, start_now=True) as helper:
        helper.wait_until_up(timeout=60)
        [(_, (thresholds, frozen))] = list(helper.ordered(garbage_collection_settings, None, [([], None)]))
    assert thresholds == BULK_WORK_GC_THRESHOLDS
    assert frozen > 1000  # what its start imported


@pytest.mark.parametrize("use_process", [False, True])
def test_a_failing_batch_fails_the_step(use_process):
    batches = [list(range(start, start + 10)) for start in range(0, 100, 10)]  # the second holds 13
    with SyncHelper(use_process=use_process, start_now=True) as helper:
        helper.wait_until_up(timeout=60)
        with pytest.raises(ValueError, match="batch with 13"):
            list(helper.ordered(offset_all, 0, ((batch, None) for batch in batches)))


MAIN_SCRIPT = """
import operator
import pathlib
import sys

with pathlib.Path(sys.argv[1]).open("a") as runs:  # each process that runs this script says so
    runs.write(__name__ + "\\n")

from reval.reconcile.helper import SyncHelper

if __name__ == "__main__":
    with SyncHelper(use_process=True, start_now=True) as helper:
        helper.wait_until_up(timeout=60)
        print(list(helper.ordered(operator.add, 1, [(2, "a"), (3, "b")])))
"""


def test_the_helper_process_does_not_run_the_main_script_again(tmp_path):
    # A spawned process runs its parent's main script first; the `reval` command's imports take
    # seconds, which the helper would spend before taking any work.
    script, runs = tmp_path / "main_script.py", tmp_path / "runs.txt"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(runs)], check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('a', 3), ('b', 4)]"
    assert runs.read_text().splitlines() == ["__main__"]
