"""The changes feed under concurrent writers: a consumer pulling in a loop while a sync and
admins' hides commit sees every change exactly once, whatever order their transactions commit in."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from reval.clock import utcnow
from reval.models import DoctorChange
from reval.reconcile.changes import Position
from reval.reconcile.hides import record_hide
from reval.services.changes import changes_page
from tests.api.test_changes import sync, without
from tests.factories import AS_OF, EAST_OF_ENGLAND, operator_context
from tests.web.conftest import EAST_CONNECTED, EAST_NOT_CONNECTED, national  # noqa: F401  (the dataset fixture)


class FeedReader:
    """A consumer of the feed through its use case, keeping every item it was served."""

    def __init__(self, sessions, page_size: int = 5):
        self.context, self.page_size = operator_context(sessions), page_size
        self.cursor: str | None = None
        self.items: list[dict] = []

    def pull_page(self) -> int:
        page = changes_page(self.context, self.cursor, self.page_size)
        self.items += page.items
        self.cursor = page.next_cursor
        return len(page.items)

    def drain(self) -> None:
        while self.pull_page() == self.page_size:
            pass

    def served(self) -> list[Position]:
        positions = [Position.of_cursor(item["cursor"]) for item in self.items]
        assert None not in positions
        return positions  # type: ignore[return-value]


def stored_positions(sessions) -> set[Position]:
    with sessions() as session:
        return {Position(x, i) for x, i in session.execute(select(DoctorChange.xact_id, DoctorChange.id))}


def hide(session, number: str) -> None:
    record_hide(session, number, EAST_OF_ENGLAND, "on leave", None, "admin", AS_OF, utcnow())


def test_a_change_committed_late_by_an_older_transaction_is_not_skipped(sessions, national):  # noqa: F811
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer at a time, so its changes commit in the order they were written")
    reader = FeedReader(sessions)
    reader.drain()
    slow = sessions()
    slow.begin()
    hide(slow, EAST_CONNECTED[1])  # written first (smaller id), committed last
    slow.flush()
    with sessions.begin() as fast:
        hide(fast, EAST_CONNECTED[2])
    reader.drain()
    assert [item["gmcReferenceNumber"] for item in reader.items[-1:]] != [EAST_CONNECTED[2]]  # held back
    held = len(reader.items)
    slow.commit()
    slow.close()
    reader.drain()
    assert [item["gmcReferenceNumber"] for item in reader.items[held:]] == [EAST_CONNECTED[1], EAST_CONNECTED[2]]
    assert len(reader.served()) == len(set(reader.served()))


def test_a_consumer_pulling_through_a_concurrent_sync_and_hides_sees_each_change_once(sessions, national, files):  # noqa: F811
    reader = FeedReader(sessions)
    done = threading.Event()
    failures: list[BaseException] = []

    def pull_until_done() -> None:
        try:
            while not done.is_set():
                reader.pull_page()
            reader.drain()
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)

    def sync_in_background() -> None:
        try:
            sync(sessions, files, without(national, EAST_NOT_CONNECTED[0]), AS_OF + timedelta(days=1), "2")
        except BaseException as error:
            failures.append(error)

    consumer, syncing = threading.Thread(target=pull_until_done), threading.Thread(target=sync_in_background)
    consumer.start()
    syncing.start()
    for number in EAST_CONNECTED[3:8]:
        with sessions.begin() as session:
            hide(session, number)
    syncing.join()
    done.set()
    consumer.join()
    assert not failures, failures
    served = reader.served()
    assert len(served) == len(set(served)), "an item was served twice"
    assert set(served) == stored_positions(sessions), "an item was never served"
    assert served == sorted(served)
    hides = [item["gmcReferenceNumber"] for item in reader.items if item["kind"] == "HIDE"]
    assert hides == EAST_CONNECTED[3:8]
