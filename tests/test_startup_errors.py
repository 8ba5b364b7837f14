"""A wrong setting or file stops every command, the server and the workers in one line naming it
and its cause, never a traceback: exit 2 for a setting that is wrong, 1 for a service that is
down; --debug (or REVAL_DEBUG=1) adds the traceback for whoever needs it."""

from __future__ import annotations

import pytest

from tests.conftest import assert_one_line_refusal, reval_from_settings

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
WRONG_DATABASES = [
    ("sqlite://relative.sqlite", 2, "is not a database URL Reval can use"),
    (f"{POSTGRES}/reval_no_such_database", 2, 'database "reval_no_such_database" does not exist'),
    ("postgresql://reval_no_such_user@127.0.0.1:5432/test", 2, 'role "reval_no_such_user" does not exist'),
    ("sqlite:////etc/passwd", 2, "'/etc/passwd' is not an SQLite database"),
    ("postgresql://postgres@127.0.0.1:1/test", 1, "cannot connect to PostgreSQL at 127.0.0.1:1: connection refused"),
]
COMMANDS = {
    "runs": ["runs"],
    "serve": ["serve", "--port", "0"],
    "worker": ["worker"],
    "beat": ["beat"],
}
SERVERS = {"REVAL_AUTH": "dev", "REVAL_BROKER_URL": "redis://127.0.0.1:1/0"}  # a broker nobody answers on


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("url, exit_code, cause", WRONG_DATABASES, ids=[url for url, _, _ in WRONG_DATABASES])
def test_a_database_that_cannot_be_used_is_one_line(tmp_path, command, url, exit_code, cause):
    result = reval_from_settings(tmp_path, *command, REVAL_DATABASE_URL=url, **SERVERS)
    assert_one_line_refusal(result, exit_code, cause)
    assert "Traceback" not in result.output


def test_debug_adds_the_traceback(tmp_path):
    quiet = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL="sqlite:////etc/passwd")
    with_flag = reval_from_settings(tmp_path, "--debug", "runs", REVAL_DATABASE_URL="sqlite:////etc/passwd")
    with_setting = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL="sqlite:////etc/passwd", REVAL_DEBUG="1")
    assert "Traceback" not in quiet.output
    for result in (with_flag, with_setting):
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.output
        assert result.output.strip().splitlines()[-1] == quiet.output.strip()


@pytest.mark.parametrize("content", ["not json{", '{"kty": "RSA"}', "[]", ""])
def test_a_corrupt_development_signing_key_is_one_line(tmp_path, content):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "dev-token-key.json").write_text(content)
    result = reval_from_settings(tmp_path, "runs", REVAL_AUTH="dev")
    assert_one_line_refusal(result, 2, "dev-token-key.json is not a development signing key", "delete it")


def test_a_database_file_that_is_a_folder_is_one_line(tmp_path):
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()
    result = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL=f"sqlite:///{folder}")
    assert_one_line_refusal(result, 2, "REVAL_DATABASE_URL", str(folder))
