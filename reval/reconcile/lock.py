"""One sync at a time, whoever starts it, serialised by the database itself.

Two syncs applying the same sources at once would both record the same moves (and, on
PostgreSQL, the second can fail on a new doctor the first inserted). Every way of starting a
sync takes this lock first: on PostgreSQL a session-level advisory lock, held by a connection of
its own for as long as the sync runs; on SQLite an exclusive ``flock`` on a file beside the
database. Both are released by the operating system when their process dies, however it dies,
so a run left RUNNING by a process that no longer holds the lock was cut short.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

# Any fixed 64-bit number, the same in every process: "reval sync" in ASCII.
ADVISORY_LOCK_KEY = 0x7265_7661_6C73_796E
POLL_SECONDS = 0.2  # how often a waiting SQLite sync tries the lock file again
_IN_MEMORY = threading.Lock()  # an in-memory SQLite database exists in this process only


class SyncLockBusy(Exception):
    """Another sync held the lock for the whole wait."""


def lock_holder() -> str:
    """Who this process is, as recorded on the run it syncs: enough to find it on its machine."""
    return f"{socket.gethostname()} pid {os.getpid()}"


@contextmanager
def sync_lock(engine: Engine, wait_seconds: float = 0, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Holds the sync lock for the block; waits up to ``wait_seconds`` for it (telling
    ``on_wait`` once, when it has to wait), else raises SyncLockBusy."""
    lock: Callable[[Engine, float, Callable[[], None]], AbstractContextManager[None]]
    if engine.dialect.name == "postgresql":
        lock = _postgresql_lock
    elif engine.url.database in (None, "", ":memory:"):
        lock = _in_memory_lock
    else:
        lock = _file_lock
    with lock(engine, max(0.0, wait_seconds), on_wait or (lambda: None)):
        yield


@contextmanager
def _postgresql_lock(engine: Engine, wait_seconds: float, on_wait: Callable[[], None]) -> Iterator[None]:
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        if not got and wait_seconds > 0:
            on_wait()
            # lock_timeout bounds the wait (0 would mean for ever, hence the 1 ms floor).
            connection.exec_driver_sql(f"SET lock_timeout = {max(1, int(wait_seconds * 1000))}")
            try:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                got = True
            except DBAPIError as error:
                if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
            connection.exec_driver_sql("RESET lock_timeout")
        if not got:
            raise SyncLockBusy()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
    except BaseException:
        # A connection in doubt (interrupted mid-statement) may still hold the lock: close it for
        # good rather than return it to the pool.
        connection.invalidate()
        raise
    finally:
        connection.close()


@contextmanager
def _file_lock(engine: Engine, wait_seconds: float, on_wait: Callable[[], None]) -> Iterator[None]:
    path = f"{engine.url.database}.sync-lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncLockBusy() from None
                if not told:
                    on_wait()
                    told = True
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def _in_memory_lock(_engine: Engine, wait_seconds: float, on_wait: Callable[[], None]) -> Iterator[None]:
    if not _IN_MEMORY.acquire(blocking=False):
        if wait_seconds <= 0:
            raise SyncLockBusy()
        on_wait()
        if not _IN_MEMORY.acquire(timeout=wait_seconds):
            raise SyncLockBusy()
    try:
        yield
    finally:
        _IN_MEMORY.release()
