"""Serving a WSGI app: gunicorn's prefork processes where it runs, waitress where it cannot.

gunicorn forks its worker processes from one that has already made the app, so every process
holds the same app: the same secret key, settings and signing keys. Whatever a process must not
share with its parent (database connections) is let go in ``after_fork``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

# Called with gunicorn's arbiter and the worker when a worker process exits, in the parent: the
# place for per-process clean-up such as prometheus-client's multiprocess mark_process_dead(pid).
CHILD_EXIT_HOOKS: list[Callable[[Any, Any], None]] = []
GRACEFUL_SECONDS = 30  # how long a stopping process may finish the requests it holds
REQUEST_TIMEOUT_SECONDS = 120  # a process silent for this long is restarted (a CSV download streams, so speaks)
# How long an idle connection is kept for its next request. gunicorn's 2 s closed connections
# whose next request had arrived but not yet been read while every thread was busy: the
# client saw its request reset.
KEEP_ALIVE_SECONDS = 30


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform (Windows, macOS)
        return os.cpu_count() or 1


def prefork_available() -> bool:
    """gunicorn runs on POSIX only (it needs fcntl)."""
    try:
        import fcntl  # noqa: F401

        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return True


def serve_wsgi(
    app: Any,
    host: str,
    port: int,
    *,
    workers: int,
    threads: int,
    after_fork: Callable[[], None] = lambda: None,
) -> str:
    """Serves until stopped (Ctrl-C or SIGTERM). Returns which server it was: ``workers``
    gunicorn processes of ``threads`` threads each, or, for one process or where gunicorn cannot
    run, waitress with ``threads`` threads in this one."""
    if workers > 1 and prefork_available():
        _run_gunicorn(app, _gunicorn_options(host, port, workers, threads, after_fork))
        return "gunicorn"
    from waitress import serve as waitress_serve

    with contextlib.suppress(KeyboardInterrupt):
        waitress_serve(app, host=host, port=port, threads=threads, ident="Reval", _quiet=True)
    return "waitress"


def _gunicorn_options(
    host: str, port: int, workers: int, threads: int, after_fork: Callable[[], None]
) -> dict[str, Any]:
    def post_fork(_arbiter: Any, _worker: Any) -> None:
        after_fork()

    def child_exit(arbiter: Any, worker: Any) -> None:
        for hook in CHILD_EXIT_HOOKS:
            hook(arbiter, worker)

    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_SECONDS,
        "keepalive": KEEP_ALIVE_SECONDS,
        "post_fork": post_fork,
        "child_exit": child_exit,
        "loglevel": "warning",
        "errorlog": "-",
        "proc_name": "reval",
    }


def _run_gunicorn(application: Any, options: dict[str, Any]) -> None:
    from gunicorn.app.base import BaseApplication

    class Prefork(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    Prefork().run()
