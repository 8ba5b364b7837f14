"""`reval demo` checks that its port is free before it does anything."""

from __future__ import annotations

import socket

from tests.conftest import assert_one_line_refusal


def test_demo_on_a_port_in_use_stops_at_once_naming_the_port(reval, migrated):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = reval("demo", "--doctors", "300", "--database-url", migrated, "--port", port, expect_exit=2)
    assert_one_line_refusal(result, 2, f"port {port}", "--port")
    assert "Generated" not in result.output  # stopped before any work


def test_demo_says_its_rejected_records_are_bad_on_purpose(reval, migrated):
    output = reval("demo", "--doctors", "300", "--as-of", "2026-11-21", "--database-url", migrated, "--no-serve").output
    assert "bad on purpose" in output
