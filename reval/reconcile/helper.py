"""A second process for a sync's pure, CPU-bound steps, so a national sync uses both cores.

A sync holds one database transaction, and only the process holding it may read or write. Much
of a sync's time, though, goes on work that needs no database: decoding and validating records,
and deciding doctors from rows already read. ``SyncHelper`` runs that work in a helper process
while this one reads and writes, and this process takes a batch itself whenever it would
otherwise wait, so neither sits idle and the order of results never changes.

The functions it runs are pure and module-level; without a helper process (a small sync, one
core, ``REVAL_SYNC_HELPER=0`` in the sync's controls, or inside a daemonic process) they run here,
the same code in the same order, so both ways give identical results (a test checks this).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import itertools
import multiprocessing
import multiprocessing.spawn
import os
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

K = TypeVar("K")
R = TypeVar("R")

# Batches queued for the helper ahead of the one this process waits for.
LOOKAHEAD = 3
# How long a step works alone before it is worth starting a helper process for the rest.
WORK_ALONE_SECONDS = 0.2
# How often the helper checks its parent is still alive.
PARENT_CHECK_SECONDS = 0.5
# What the pipes to and from the helper hold (Linux; the kernel's default is 64 KiB, and a process
# without privileges may ask for up to /proc/sys/fs/pipe-max-size, 1 MiB unless set otherwise).
PIPE_BYTES = 1 << 20
STANDARD_STREAMS = 2  # stdin, stdout and stderr: descriptors 0 to 2
# Bulk work's garbage collector thresholds: each young collection rescans every live container, so it runs seldom.
BULK_WORK_GC_THRESHOLDS = (500_000, 50, 1000)

# In the helper process: what every batch of a step shares, by the step's number (two steps'
# batches may be in hand at once: see SyncHelper.ordered's ``when_idle``).
_contexts: dict[int, Any] = {}


def _install(step: int, context: Any) -> None:
    _contexts[step] = context


def _ready() -> None:
    """The helper's first task, done once it has started."""


def _discard(step: int) -> None:
    del _contexts[step]


def _run(work: Callable[[Any, Any], R], step: int, batch: Any) -> R:
    return work(_contexts[step], batch)


def _peak_memory_mib() -> float | None:
    """This process's peak resident memory since it started (Linux), in MiB. Not ru_maxrss: that
    also counts the moment between fork and exec, when the child still shares its parent's pages."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _stop_signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM received during the block are acted on as it ends, not within it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: received.append(signum)) for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in received:
            signal.raise_signal(number)


@contextmanager
def _main_module_not_rerun() -> Iterator[None]:
    """Processes started in the block do not run this process's main script again.

    A spawned process runs its parent's main script (as ``__mp_main__``) before any work, so
    that functions defined there can be sent to it. The helper is only ever sent functions of
    Reval's own modules, and the main script is usually the ``reval`` command, whose imports
    (every command, the web app, the API) are slow: the helper would join a sync late, and an
    unchanged re-sync could be over before it took a batch.
    """
    # No public way to spawn without the main script: test_the_helper_process_does_not_run_the_main_script_again.
    prepare = multiprocessing.spawn.get_preparation_data

    def without_main(name: str) -> dict[str, Any]:
        data = prepare(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    multiprocessing.spawn.get_preparation_data = without_main
    try:
        yield
    finally:
        multiprocessing.spawn.get_preparation_data = prepare


def _start_helper(modules: tuple[str, ...], parent: int) -> None:
    """The helper process's start: its parent (``parent``, named by the parent itself: it may
    have died before this runs) watched, the work's modules imported."""
    # Ctrl-C reaches every process of the terminal's group: the parent stops this one itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _widen_pipes()
    threading.Thread(target=_exit_with_parent, args=(parent,), name="reval-parent-watch", daemon=True).start()
    for module in modules:
        importlib.import_module(module)
    # Bulk work alone: collect seldom, and freeze what was imported (it lives as long as the process).
    gc.set_threshold(*BULK_WORK_GC_THRESHOLDS)
    gc.freeze()


def _exit_with_parent(parent: int) -> None:
    """Ends the helper within a second of its parent's end, however the parent ended (kill -9
    included): otherwise it would wait for work for ever, reparented, and keep the resource
    tracker (which waits for every holder of its pipe) alive too."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _widen_pipes() -> None:
    """Widens the pipes this helper process holds (its work coming in, its results going out) to
    PIPE_BYTES where the system allows it (else they stay as they are).

    Results go back through a pipe that a thread of the executor reads in the parent, a chunk at
    a time, taking the interpreter lock for each chunk while the parent's main thread holds it:
    through the default pipe the helper sits blocked writing its results. Widened (the pipe to it
    too), the helper stays busy. The executor keeps its pipes to itself, so the helper finds them
    among its open files (Linux's /proc): a spawned process holds no other pipe but its standard
    streams, which are left as they are.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    if set_size is None:  # not Linux
        return
    for descriptor in descriptors:
        if descriptor <= STANDARD_STREAMS:
            continue
        # Over the system's limit for this user the call fails: the default serves, more slowly.
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.fstat(descriptor).st_mode):
                fcntl.fcntl(descriptor, set_size, PIPE_BYTES)


def helper_process_wanted() -> bool:
    """A helper process pays off with a second core; a daemonic process may not start one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores > 1 and not multiprocessing.current_process().daemon


class SyncHelper:
    """Runs batches of pure work here and in a helper process, results always in the batches' order.

    The helper is a fresh interpreter (spawned, not forked: a forked child would inherit this
    process's connections and threads, and run the after-fork hooks libraries register for
    them; kombu's, for one, closes the broker connections it finds). Starting one takes a
    while, so a sync whose input is known to be large starts it at once (``start_now``), and
    otherwise a step starts it once it has worked alone for WORK_ALONE_SECONDS with batches still
    to come: a small sync (an admin's change, a test) never starts one.
    """

    def __init__(self, use_process: bool | None = None, start_now: bool = False, preload: tuple[str, ...] = ()):
        """``preload``: the modules of the work to come, imported as the process starts."""
        self._wanted = helper_process_wanted() if use_process is None else use_process
        self._preload = preload
        self._executor: ProcessPoolExecutor | None = None
        self._up: Future | None = None  # done once the process has started and imported ``preload``
        self._steps = itertools.count()
        self.batches_in_process = 0  # how many batches the helper process worked out
        self.peak_memory_mib: float | None = None  # the helper's, known once it has closed
        if start_now and self._wanted:
            self._start()

    @property
    def uses_process(self) -> bool:
        """Whether this sync has started a helper process (it may have closed since)."""
        return self._up is not None

    def ordered(
        self,
        work: Callable[[Any, Any], R],
        context: Any,
        items: Iterable[tuple[Any, K]],
        when_idle: OrderedResults | None = None,
    ) -> OrderedResults[K, R]:
        """``(keep, work(context, batch))`` for each ``(batch, keep)`` of ``items``, in their order.

        ``context`` crosses to the helper once; ``keep`` stays here (rows to compare against, say).
        Nothing is worked out until the first result is asked for. ``when_idle``: the results of
        a later step, of whose batches the helper is given one whenever it has worked out every
        batch of this step it was given (a step whose results take this process longer to write
        than the helper to work out would otherwise leave it idle), and as many as LOOKAHEAD
        once this step's are all given: at most LOOKAHEAD of its results wait to be asked for.
        """
        return OrderedResults(self, work, context, iter(items), next(self._steps), when_idle)

    def _start(self) -> None:
        # Ctrl-C or SIGTERM while the process is being started would cut its start-up data short
        # (and it would print a traceback): they wait until it has been handed over.
        with _stop_signals_deferred(), _main_module_not_rerun():
            self._executor = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_helper,
                initargs=(self._preload, os.getpid()),
            )
            self._up = self._executor.submit(_ready)  # the process starts with its first task

    def _executor_for(self, step: int, context: Any, started: float) -> ProcessPoolExecutor | None:
        """The process to share a step with (given its context first), once it is worth one and up:
        until then the step carries on here, rather than wait for the process to start."""
        if self._executor is None:
            if not self._wanted or time.perf_counter() - started < WORK_ALONE_SECONDS:
                return None
            self._start()
        executor, up = self._executor, self._up  # both set by _start
        if executor is None or up is None or not up.done():
            return None
        executor.submit(_install, step, context)  # one worker takes tasks in order: this comes first
        return executor

    def wait_until_up(self, timeout: float | None = None) -> None:
        """Blocks until the helper process has started (for a caller that would rather wait than
        work alone meanwhile: a test that must see work cross to it)."""
        if self._up is not None:
            self._up.result(timeout)

    def close(self, interrupted: bool = False) -> None:
        """Ends the helper process. After a failure or an interruption it is not asked for its
        figures, and is waited for: the process this one may be about to end is its parent."""
        if self._executor is not None:
            if not interrupted:
                # A helper that died or hangs has no figure to give; the sync reports its failure.
                with contextlib.suppress(Exception):
                    self.peak_memory_mib = self._executor.submit(_peak_memory_mib).result(timeout=60)
            # Otherwise not waiting for it to exit (time the sync need not spend): the executor's thread reaps it.
            self._executor.shutdown(wait=interrupted, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> SyncHelper:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        self.close(interrupted=exc_type is not None)


class OrderedResults(Iterator[tuple[K, R]]):
    """Results of batches shared between the helper process and this one, in the batches' order."""

    def __init__(self, helper: SyncHelper, work, context, items: Iterator, step: int, when_idle: OrderedResults | None):
        self.helper, self.work, self.context, self.items, self.step = helper, work, context, items, step
        self.when_idle = when_idle
        self.executor: ProcessPoolExecutor | None = None
        self.started: float | None = (
            None  # when it was first asked for a result (or, as a later step, to keep the helper busy)
        )
        self.slots: deque[tuple[Any, Future | list]] = deque()  # a future, or [result] worked out here
        self.queued = 0  # futures among the slots
        self.exhausted = False

    def _take(self) -> tuple[Any, Any] | None:
        item = None if self.exhausted else next(self.items, None)
        if item is None and not self.exhausted:
            self.exhausted = True
            if self.executor is not None:  # after the step's last batch there: its context is done with
                self.executor.submit(_discard, self.step)
        return item

    def _queue_for_helper(self, most: int = LOOKAHEAD) -> None:
        """Gives the helper batches of this step, until ``most`` of its results are in hand."""
        if self.exhausted:
            return
        if self.started is None:
            self.started = time.perf_counter()
        if self.executor is None:
            self.executor = self.helper._executor_for(self.step, self.context, self.started)
            if self.executor is None:
                return
        while self.queued < most and (item := self._take()) is not None:
            self.slots.append((item[1], self.executor.submit(_run, self.work, self.step, item[0])))
            self.queued += 1

    def _keep_helper_busy(self) -> None:
        """Gives the helper a batch of the later step (``when_idle``) if it has worked out every
        batch it was given; all it may take, once this step's batches have all been given."""
        later = self.when_idle
        if later is None or self.executor is None:
            return
        if self.exhausted:
            later._queue_for_helper()
        elif self._all_worked_out() and later._all_worked_out():
            later._queue_for_helper(min(later.queued + 1, LOOKAHEAD))

    def _all_worked_out(self) -> bool:
        return all(slot.done() for _, slot in self.slots if isinstance(slot, Future))

    def __next__(self) -> tuple[Any, Any]:
        self._keep_helper_busy()  # before this step's next batches: they would keep it busy
        self._queue_for_helper()
        if not self.slots:
            item = self._take()  # no helper (yet): the next batch is worked out here
            if item is None:
                raise StopIteration
            return item[1], self.work(self.context, item[0])
        keep, slot = self.slots[0]
        while isinstance(slot, Future) and not slot.done() and (item := self._take()) is not None:
            self.slots.append((item[1], [self.work(self.context, item[0])]))  # rather than wait, work here
        self.slots.popleft()
        if isinstance(slot, Future):
            self.queued -= 1
            result = slot.result()
            self.helper.batches_in_process += 1
            return keep, result
        return keep, slot[0]


# For steps given no helper: everything runs here, in order. Safe to share, as it never starts one.
IN_THIS_PROCESS = SyncHelper(use_process=False)
