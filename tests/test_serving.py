"""`reval serve --workers N`: gunicorn's prefork processes, each answering as any other would:
the same sign-in, the same API tokens, and one API rate limit between them."""

from __future__ import annotations

import http.client
import re
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reval.api.tokens import TokenSettings, dev_key, mint_dev_token
from reval.bench_pages import free_port, reval_serve_command, running_server
from reval.settings import Settings, process_environment
from tests.conftest import assert_one_line_refusal, reval_from_settings, wait_for
from tests.factories import EAST_OF_ENGLAND

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads which process holds a socket")
CONNECTIONS = 40  # fresh connections: enough that both processes take some (each is a fair race)


class Served:
    def __init__(self, address: str, instance: Path, server_pid: int):
        self.host, self.port = address.removeprefix("http://").split(":")
        self.instance, self.server_pid = instance, server_pid

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, int, dict[str, str]]:
        """(status, body, the pid of the process that answered, headers), on a fresh connection."""
        connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            body = response.read().decode()
            pid = self.answering_process(connection.sock.getsockname()[1])
            return response.status, body, pid, dict(response.getheaders())
        finally:
            connection.close()

    def post(self, path: str, form: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        try:
            connection.request(
                "POST", path, body=form, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
            )
            response = connection.getresponse()
            response.read()
            return response.status, dict(response.getheaders())
        finally:
            connection.close()

    def answering_process(self, client_port: int) -> int:
        """The server process holding the other end of this connection (read from /proc)."""
        inode = None
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
                if local == int(self.port) and remote == client_port:
                    inode = fields[9]
        assert inode is not None, "the server's end of the connection is not in /proc/net"
        for pid in self.worker_pids():
            for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if descriptor.readlink().name == f"socket:[{inode}]":
                        return pid
                except FileNotFoundError:  # closed as it was read
                    continue
        raise AssertionError(f"no server process holds socket {inode}")

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes, or the one process where waitress serves alone."""
        children = Path(f"/proc/{self.server_pid}/task/{self.server_pid}/children").read_text().split()
        return [int(pid) for pid in children] or [self.server_pid]


@contextmanager
def serving(app, tmp_path: Path, workers: int, **settings: str) -> Iterator[Served]:
    """`reval serve` on the tests' database (migrated, with the designated bodies)."""
    instance = tmp_path / "instance"
    environment = process_environment(
        REVAL_DATABASE_URL=app.config["REVAL_DATABASE_URL"],
        REVAL_AUTH="dev",
        REVAL_SECURE_COOKIES="0",
        REVAL_INSTANCE_PATH=str(instance),
        **{"REVAL_BROKER_URL": "", "REVAL_RATE_LIMIT_STORAGE_URL": "", **settings},  # empty is unset
    )
    port = free_port()
    log = tmp_path / "serve.log"
    with running_server(reval_serve_command(port, workers), environment, port, log) as address:
        served = Served(address, instance, int(_server_pid(port)))
        wait_for(lambda: len(served.worker_pids()) == workers or workers == 1, seconds=60)
        yield served


def _server_pid(port: int) -> str:
    """The `reval serve` process listening on the port (gunicorn's arbiter)."""
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                command = (process / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in command and str(port).encode() in command:
                return process.name
    raise AssertionError(f"no `reval serve` on port {port}")


def _signed_in_cookie(served: Served) -> str:
    status, form, _pid, headers = served.get("/auth/dev")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    status, headers = served.post(
        "/auth/dev",
        f"csrf_token={token.group(1)}&name=Ada&role=national&designated_body={EAST_OF_ENGLAND}",
        {"Cookie": cookie},
    )
    assert status == 302, "the development sign-in was refused"
    return headers["Set-Cookie"].split(";")[0]


def _api_token(served: Served, **settings: str) -> str:
    configured = TokenSettings.from_settings(Settings.from_mapping({"REVAL_AUTH": "dev", **settings}))
    return mint_dev_token(dev_key(served.instance), configured, "caller", "reval.read", [EAST_OF_ENGLAND], 10)


def test_two_workers_answer_from_two_processes_and_a_sign_in_holds_in_both(app, tmp_path):
    with serving(app, tmp_path, 2) as served:
        assert len(served.worker_pids()) == 2
        cookie = _signed_in_cookie(served)
        pages = [served.get(f"/queues/discrepancies?body={EAST_OF_ENGLAND}", {"Cookie": cookie}) for _ in range(40)]
        assert {status for status, *_ in pages} == {200}
        assert all("Ada" in body for _status, body, *_ in pages), "a process did not know the signed-in session"
        assert {pid for _status, _body, pid, _headers in pages} == set(served.worker_pids())


def test_one_worker_serves_in_one_process(app, tmp_path):
    with serving(app, tmp_path, 1) as served:
        assert served.worker_pids() == [served.server_pid]  # waitress: no processes of its own
        status, _body, pid, _headers = served.get("/auth/dev")
        assert (status, pid) == (200, served.server_pid)


def test_the_rate_limit_is_counted_once_across_processes_in_redis(app, tmp_path, broker):
    with serving(app, tmp_path, 2, REVAL_RATE_LIMIT_STORAGE_URL=broker, REVAL_API_RATE_LIMIT="6/minute") as served:
        headers = {"Authorization": f"Bearer {_api_token(served)}"}
        answers = [
            served.get(f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/doctors", headers) for _ in range(CONNECTIONS)
        ]
        assert Counter(status for status, *_ in answers) == {200: 6, 429: CONNECTIONS - 6}
        assert {pid for _status, _body, pid, _headers in answers} == set(served.worker_pids())


def test_without_shared_storage_each_process_allows_its_share_of_the_limit(app, tmp_path):
    with serving(app, tmp_path, 2, REVAL_API_RATE_LIMIT="6/minute") as served:
        headers = {"Authorization": f"Bearer {_api_token(served)}"}
        answers = [
            served.get(f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/doctors", headers) for _ in range(CONNECTIONS)
        ]
        allowed = Counter(pid for status, _body, pid, _headers in answers if status == 200)
        assert sum(allowed.values()) <= 6, "two processes together allowed more than the limit"
        assert all(count == 3 for count in allowed.values()), allowed


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_refused_in_one_line(app, tmp_path, workers):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = reval_from_settings(
            tmp_path,
            "serve",
            "--port",
            port,
            "--workers",
            workers,
            REVAL_DATABASE_URL=app.config["REVAL_DATABASE_URL"],
            REVAL_AUTH="dev",
        )
    assert_one_line_refusal(result, 2, f"port {port} on 127.0.0.1 is not free", "--port")


def test_metrics_of_both_processes_add_up(app, tmp_path):
    with serving(app, tmp_path, 2, REVAL_METRICS_TOKEN="the-scrapers-token") as served:
        answers = [served.get("/healthz") for _ in range(CONNECTIONS)]
        assert {pid for _status, _body, pid, _headers in answers} == set(served.worker_pids())
        status, body, _pid, _headers = served.get("/metrics", {"Authorization": "Bearer the-scrapers-token"})
    assert status == 200
    counted = {
        sample.labels["route"]: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "reval_http_requests_total" and sample.labels["status"] == "200"
    }
    assert counted["/healthz"] == CONNECTIONS
