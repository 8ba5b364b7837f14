"""Settings: a bad or missing one stops the command before anything is recorded, in one line
naming it, never a traceback."""

from __future__ import annotations

import json

import pytest

from reval.app import create_app
from reval.refusals import NotConfigured
from reval.settings import Settings, environment_settings, number, time_of_day
from tests.conftest import assert_one_line_refusal, reval_from_settings
from tests.factories import EAST_OF_ENGLAND

GMC = {"REVAL_GMC_URL": "http://127.0.0.1:9/unreachable", "REVAL_GMC_USERNAME": "reval", "REVAL_GMC_PASSWORD": "s3cret"}
TIS = {
    "REVAL_TIS_URL": "http://127.0.0.1:9/tcs",
    "REVAL_TIS_TOKEN_URL": "http://127.0.0.1:9/token",
    "REVAL_TIS_CLIENT_ID": "reval",
    "REVAL_TIS_CLIENT_SECRET": "s3cret",
}


@pytest.mark.parametrize("missing", [["REVAL_GMC_PASSWORD"], ["REVAL_GMC_USERNAME", "REVAL_GMC_PASSWORD"]])
def test_a_gmc_address_without_its_account_is_refused_before_a_request_is_recorded(app, reval, synced, missing):
    app.config.update({name: value for name, value in GMC.items() if name not in missing})
    result = reval("connect", "1000003", "--designated-body", EAST_OF_ENGLAND, "--reason", "1", expect_exit=2)
    assert_one_line_refusal(result, 2, "REVAL_GMC_URL is set but " + " and ".join(missing))
    app.config.pop("REVAL_GMC_URL")
    assert json.loads(reval("requests", "--format", "json").stdout) == []
    assert [e["kind"] for e in json.loads(reval("history", "1000003", "--json").stdout)] == ["CONNECTION", "DECISION"]


@pytest.mark.parametrize(
    "setting, value, args, message",
    [
        (
            "REVAL_GMC_CONNECT_TIMEOUT",
            "abc",
            ["connect", "1000003", "--designated-body", EAST_OF_ENGLAND, "--reason", "1"],
            "REVAL_GMC_CONNECT_TIMEOUT must be a number (got 'abc')",
        ),
        (
            "REVAL_GMC_ATTEMPTS",
            "2.5",
            ["sync", "--tis-file", "{tis}"],
            "REVAL_GMC_ATTEMPTS must be a whole number (got '2.5')",
        ),
        (
            "REVAL_TIS_PAGE_SIZE",
            "0",
            ["sync", "--gmc-file", "{gmc}"],
            "REVAL_TIS_PAGE_SIZE must be at least 1 (got '0')",
        ),
        (
            "REVAL_DELIVERY_MAX_ATTEMPTS",
            "many",
            ["deliver"],
            "REVAL_DELIVERY_MAX_ATTEMPTS must be a whole number (got 'many')",
        ),
    ],
)
def test_a_setting_that_is_not_a_number_is_refused_before_anything_is_recorded(
    app, reval, synced, snapshots, setting, value, args, message
):
    before = reval("runs", "--format", "json").output
    app.config.update(GMC | TIS | {setting: value})
    result = reval(*(a.format(gmc=snapshots[0], tis=snapshots[1]) for a in args), expect_exit=2)
    assert_one_line_refusal(result, 2, message)
    app.config.pop(setting)
    assert reval("runs", "--format", "json").output == before
    assert json.loads(reval("requests", "--format", "json").stdout) == []


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("REVAL_SHARD_SIZE", "lots", "REVAL_SHARD_SIZE must be a whole number (got 'lots')"),
        ("REVAL_NIGHTLY_AT", "half past midnight", "REVAL_NIGHTLY_AT must be a time of day written HH:MM"),
        ("REVAL_NIGHTLY_LOCK_SECONDS", "0", "REVAL_NIGHTLY_LOCK_SECONDS must be at least 1 (got '0')"),
        ("REVAL_BROKER_VISIBILITY_TIMEOUT", "1h", "REVAL_BROKER_VISIBILITY_TIMEOUT must be a number (got '1h')"),
    ],
)
@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_worker_or_the_scheduler_with_a_bad_setting_refuses_to_start(tmp_path, setting, value, message, command):
    # The broker is never reached: the settings are read before anything starts.
    result = reval_from_settings(tmp_path, command, REVAL_BROKER_URL="redis://127.0.0.1:9/0", **{setting: value})
    assert_one_line_refusal(result, 2, message)


def test_every_setting_is_read_and_checked_as_the_app_is_made(tmp_path):
    instance = {"REVAL_INSTANCE_PATH": str(tmp_path / "instance")}
    with pytest.raises(NotConfigured, match=r"^REVAL_TIS_CONCURRENCY must be at least 1 \(got '0'\)$"):
        create_app(instance | {"REVAL_TIS_CONCURRENCY": "0"})
    with pytest.raises(NotConfigured, match=r"^REVAL_SYNC_HELPER must be one of"):
        create_app(instance | {"REVAL_SYNC_HELPER": "sometimes"})


def test_the_settings_are_typed_with_their_defaults():
    assert Settings.from_mapping({}) == Settings()
    read = Settings.from_mapping(
        {"REVAL_SHARD_SIZE": "10", "REVAL_NIGHTLY_AT": "01:15", "REVAL_SYNC_HELPER": "0", "REVAL_BROKER_URL": " "}
    )
    assert (read.shard_size, read.nightly_at, read.sync_helper, read.broker_url) == (10, (1, 15), False, None)
    assert isinstance(read.shard_size, int) and read.tis_attempts == 5


def test_the_settings_read_the_environment_by_name_only(monkeypatch):
    monkeypatch.setenv("REVAL_TIS_PAGE_SIZE", "20")
    monkeypatch.setenv("REVAL_NOT_A_SETTING", "1")
    assert Settings.from_environment().tis_page_size == 20
    assert environment_settings({"REVAL_TIS_PAGE_SIZE": "20", "REVAL_NOT_A_SETTING": "1", "REVAL_AUTH": ""}) == {
        "REVAL_TIS_PAGE_SIZE": "20"
    }


@pytest.mark.parametrize("raw, parsed", [(None, 30.0), ("", 30.0), (" 2.5 ", 2.5), ("0", 0.0)])
def test_a_number_setting_reads_as_a_number_or_its_default(raw, parsed):
    assert number({"REVAL_X": raw}, "REVAL_X", 30.0) == parsed


@pytest.mark.parametrize("raw", ["nan", "-1", "ten"])
def test_a_number_setting_out_of_its_range_names_the_setting(raw):
    with pytest.raises(NotConfigured, match=r"^REVAL_X must be"):
        number({"REVAL_X": raw}, "REVAL_X", 30.0)


@pytest.mark.parametrize("raw", ["24:00", "6", "06:5", "6pm", "-1:30"])
def test_a_time_of_day_setting_is_written_hh_mm(raw):
    assert time_of_day({}, "REVAL_AT", "00:30") == (0, 30)
    assert time_of_day({"REVAL_AT": "23:05"}, "REVAL_AT", "00:30") == (23, 5)
    with pytest.raises(NotConfigured, match="REVAL_AT must be a time of day written HH:MM"):
        time_of_day({"REVAL_AT": raw}, "REVAL_AT", "00:30")
