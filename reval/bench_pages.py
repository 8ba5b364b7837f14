"""``reval bench --pages``: pages over HTTP against a real `reval serve`, beside a floor page.

The floor is the same server stack (the same processes and threads) serving a plain Flask page
that counts an indexed SQLite table of as many rows as the bench's doctors and reads 20 of them
by OFFSET into an HTML table: no page can do less. Each is timed by one client, then by
CONCURRENT_CLIENTS at once, in the same run, so the ratios hold on any machine.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from reval.api.tokens import TokenSettings, dev_key, mint_dev_token
from reval.serving import default_workers
from reval.settings import Settings, process_environment

CONCURRENT_CLIENTS = 16
ONE_CLIENT_SAMPLES = 30
CONCURRENT_ROUNDS = 3  # each concurrent client goes through the whole mix this many times
WARM_UP = 3
FLOOR_PAGES = 50  # the floor reads pages 1 to 50 in turn, as the queue's mix reaches page 50
START_SECONDS = 60
ROW_BATCH = 10_000


@contextmanager
def running_server(command: list[str], environment: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """A server started as its own process on ``port``, once it answers; stopped as SIGTERM stops it."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(process, address, log)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen, address: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped as it started: {log.read_text(errors='replace')[-2000:]}")
        try:
            requests.get(address + "/", timeout=5, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {START_SECONDS} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reval_serve_command(port: int, workers: int | None = None) -> list[str]:
    command = [str(Path(sys.executable).with_name("reval")), "serve", "--port", str(port)]
    return command + (["--workers", str(workers)] if workers else [])


def make_floor_table(path: Path, rows: int) -> None:
    """``rows`` rows of a queue's columns, indexed by queue and name, a fifth of them in the queue."""
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE floor_doctor (gmc_number TEXT PRIMARY KEY, name TEXT, queue TEXT, reason TEXT, changed TEXT)"
    )
    for start in range(0, rows, ROW_BATCH):
        connection.executemany(
            "INSERT INTO floor_doctor VALUES (?, ?, ?, ?, ?)",
            (
                (
                    f"{1000000 + n:07d}",
                    f"Name {n * 7919 % rows:08d}",
                    "DISCREPANCY" if n % 5 else "CONNECTED",
                    "DB_MISMATCH",
                    "2026-12-06",
                )
                for n in range(start, min(rows, start + ROW_BATCH))
            ),
        )
    connection.execute("CREATE INDEX floor_doctor_queue ON floor_doctor (queue, name)")
    connection.commit()
    connection.close()


def page_times_over_http(
    database_url: str, directory: Path, body: str, deep_page: int, rows: int, workers: int | None = None
) -> dict[str, Any]:
    """One client, then CONCURRENT_CLIENTS, on the floor page and on Reval's pages and API."""
    workers = workers or default_workers()
    floor_file = directory / "page-floor.sqlite"
    make_floor_table(floor_file, rows)
    environment = process_environment(
        REVAL_DATABASE_URL=database_url,
        REVAL_AUTH="dev",
        REVAL_SECURE_COOKIES="0",
        REVAL_INSTANCE_PATH=str(directory / "instance"),
        REVAL_API_RATE_LIMITS="0",  # sixteen clients at full speed are the point here, not a caller to limit
    )
    port = free_port()
    floor_command = [sys.executable, "-m", "reval.page_floor", str(floor_file), str(port), str(workers)]
    with running_server(floor_command, environment, port, directory / "page-floor.log") as address:
        floor = _measure(address, _floor_urls(), sign_in=None)
    port = free_port()
    with running_server(reval_serve_command(port, workers), environment, port, directory / "serve.log") as address:
        settings = Settings.from_mapping(environment)
        token = mint_dev_token(
            dev_key(directory / "instance"), TokenSettings.from_settings(settings), "bench", "reval.read", [body], 60
        )
        urls = _reval_urls(address, body, deep_page, token)
        reval = _measure(address, urls, sign_in=body)
    return {"workers": workers, "floor": floor, "reval": reval, **_ratios(floor, reval)}


def _floor_urls() -> dict[str, tuple[str, dict[str, str]]]:
    return {f"floor{page}": (f"/floor?page={page}", {}) for page in range(1, FLOOR_PAGES + 1)}


def _reval_urls(address: str, body: str, deep_page: int, token: str) -> dict[str, tuple[str, dict[str, str]]]:
    queue = f"/queues/discrepancies?body={body}"
    ui = {
        "discrepancies": queue,
        "discrepanciesByName": f"{queue}&sort=name",
        "discrepanciesPage50": f"{queue}&page={deep_page}",
        "nameSearch": f"/queues/connected?body={body}&q=kha",
        **{f"sortedBy_{key}": f"{queue}&sort={key}" for key in ("programme", "start", "end", "programme_owner")},
        "sortedBy_changed": f"{queue}&sort=changed&order=desc",
        "sortedBy_changed_by": f"{queue}&sort=changed_by",
    }
    auth = {"Authorization": f"Bearer {token}"}
    api = f"/api/v1/designated-bodies/{body}/doctors?queue=DISCREPANCY"
    first = requests.get(address + api, headers=auth, timeout=60)
    first.raise_for_status()
    doctor = first.json()["items"][0]["gmcReferenceNumber"]
    return {
        **{name: (url, {}) for name, url in ui.items()},
        "apiDoctors": (api, auth),
        "apiDoctorsPage50": (f"{api}&page={deep_page}", auth),
        "apiNameSearch": (f"{api}&q=kha", auth),
        "apiDoctor": (f"/api/v1/doctors/{doctor}", auth),
    }


def _signed_in(address: str, body: str | None) -> requests.Session:
    session = requests.Session()
    if body is None:
        return session
    form = session.get(address + "/auth/dev", timeout=60).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if found is None:
        raise RuntimeError("the development sign-in form has no CSRF token")
    answer = session.post(
        address + "/auth/dev",
        data={"csrf_token": found.group(1), "name": "bench", "role": "national", "designated_body": body},
        timeout=60,
    )
    answer.raise_for_status()
    return session


def _get(session: requests.Session, address: str, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    answer = session.get(address + url, headers=headers, timeout=120, allow_redirects=False)
    elapsed = time.perf_counter() - started
    if answer.status_code != requests.codes.ok:
        raise RuntimeError(f"{url} answered {answer.status_code}")
    return elapsed * 1000


def _measure(address: str, urls: dict[str, tuple[str, dict[str, str]]], sign_in: str | None) -> dict[str, Any]:
    session = _signed_in(address, sign_in)
    one_client: dict[str, Any] = {}
    if sign_in is None:  # the floor: one figure over its pages
        one_client["floor"] = _percentiles(
            [_get(session, address, *urls[name]) for _ in range(2) for name in urls][WARM_UP:]
        )
    else:
        for name, (url, headers) in urls.items():
            for _ in range(WARM_UP):
                _get(session, address, url, headers)
            one_client[name] = _percentiles([_get(session, address, url, headers) for _ in range(ONE_CLIENT_SAMPLES)])
    return {"oneClient": one_client, "concurrent": _concurrent(address, urls, sign_in)}


def _concurrent(address: str, urls: dict[str, tuple[str, dict[str, str]]], sign_in: str | None) -> dict[str, Any]:
    sessions = [_signed_in(address, sign_in) for _ in range(CONCURRENT_CLIENTS)]
    mix = list(urls.values())
    times: list[float] = []
    failures: list[BaseException] = []
    start = threading.Barrier(CONCURRENT_CLIENTS + 1)

    def client(index: int, session: requests.Session) -> None:
        start.wait()
        try:
            for round_number in range(CONCURRENT_ROUNDS):
                for offset in range(len(mix)):  # each client starts at its own place in the mix
                    url, headers = mix[(index + offset + round_number) % len(mix)]
                    times.append(_get(session, address, url, headers))
        except BaseException as error:  # reported below, in the bench's own thread
            failures.append(error)

    threads = [threading.Thread(target=client, args=(i, s)) for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a concurrent client failed: {failures[0]}")
    return {"clients": CONCURRENT_CLIENTS, **_percentiles(times), "requestsPerSecond": round(len(times) / elapsed, 1)}


def _percentiles(times_ms: list[float]) -> dict[str, float]:
    times = sorted(times_ms)
    return {
        "p50Ms": round(times[len(times) // 2], 1),
        "p95Ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "maxMs": round(times[-1], 1),
    }


def _ratios(floor: dict[str, Any], reval: dict[str, Any]) -> dict[str, Any]:
    floor_p95 = floor["oneClient"]["floor"]["p95Ms"]
    return {
        "oneClientP95ToFloor": {
            name: round(times["p95Ms"] / floor_p95, 2) for name, times in reval["oneClient"].items()
        },
        "concurrentP95ToFloor": round(reval["concurrent"]["p95Ms"] / floor["concurrent"]["p95Ms"], 2),
        "concurrentThroughputToFloor": round(
            reval["concurrent"]["requestsPerSecond"] / floor["concurrent"]["requestsPerSecond"], 2
        ),
    }
