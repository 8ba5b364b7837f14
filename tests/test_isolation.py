"""The tests keep to what they own: the broker tests use a Redis database the run claimed empty,
and never empty one that holds anything else."""

from __future__ import annotations

import redis

from tests.conftest import BROKER_OWNER_KEY, claim_broker_database, delete_run_keys


def test_the_broker_tests_use_a_database_this_run_claimed(broker):
    owner = redis.Redis.from_url(broker).get(BROKER_OWNER_KEY)
    assert owner is not None and b"reval tests, pid" in owner


def test_a_database_holding_someone_elses_keys_is_not_claimed_and_keeps_them(broker):
    connection = redis.Redis.from_url(broker)
    ours = connection.get(BROKER_OWNER_KEY)
    assert ours is not None  # this run's claim, made when the session started
    connection.delete(BROKER_OWNER_KEY)  # for a moment, as if the database were not the run's
    connection.set("someone-else:queue", "theirs")
    try:
        assert not claim_broker_database(connection, "another test run")
        assert connection.get("someone-else:queue") == b"theirs"
        assert not connection.exists(BROKER_OWNER_KEY)
    finally:
        connection.set(BROKER_OWNER_KEY, ours)
        connection.delete("someone-else:queue")


def test_between_tests_only_the_runs_keys_go_and_its_claim_stays(broker):
    connection = redis.Redis.from_url(broker)
    connection.set("celery-task-meta-1", "a result")
    delete_run_keys(connection)
    assert connection.keys() == [BROKER_OWNER_KEY.encode()]
