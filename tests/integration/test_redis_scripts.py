"""Scripts that change state run once: ``run_script_once``."""

from __future__ import annotations

import redis

from support import RedisServer
from yardmaster.shared.redis_client import make_redis, run_script_once

COUNT = "redis.call('incr', KEYS[1]); return redis.call('get', KEYS[1]) .. ARGV[1]"


def test_a_script_runs_once_and_answers(redis_url: str) -> None:
    client = make_redis(redis_url, shared_by=4)
    script = client.register_script(COUNT)

    assert run_script_once(client, script, ["counter"], ["!"]) == b"1!"
    assert run_script_once(client, script, ["counter"], ["!"]) == b"2!"
    client.close()


def test_a_redis_that_forgot_the_script_gets_it_loaded_and_runs_it_once(redis_url: str) -> None:
    client = make_redis(redis_url)
    script = client.register_script(COUNT)
    with redis.Redis.from_url(redis_url) as other:
        other.script_flush()  # as after a restart

    assert run_script_once(client, script, ["counter"], [""]) == b"1"
    assert client.get("counter") == b"1"
    client.close()


def test_after_a_redis_restart_the_next_call_works_on_a_new_connection(
    own_redis: RedisServer,
) -> None:
    client = make_redis(own_redis.url, shared_by=2)
    script = client.register_script(COUNT)
    assert run_script_once(client, script, ["counter"], [""]) == b"1"

    own_redis.stop()
    own_redis.start()  # every pooled connection is now closed by its server

    assert run_script_once(client, script, ["counter"], [""]) == b"1"  # not an error
    client.close()
