"""The turn queue across several API processes: strictly first come first served under 200
concurrent clients, one viewer at a time, and the same live stream on every process; and
owned turns: thousands of attempts to steal a turn from 2,000 source addresses all fail.

Clients come from several loopback addresses (on Linux any 127.x.y.z can be a source
address), as an address may hold only a few waiting tokens (YARDMASTER_QUEUE_TOKENS_PER_ADDRESS).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import requests
from requests.adapters import HTTPAdapter

from e2e.stack import Start
from support import eventually, free_port
from yardmaster.shared.turnqueue.store import TurnQueue


class SourceAddressAdapter(HTTPAdapter):
    """Connections made from a chosen local address."""

    def __init__(self, source: str, **options: Any) -> None:
        self.source = source
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **options: Any) -> None:
        options["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **options)


def session_from(address: str) -> requests.Session:
    """A keep-alive session whose requests come from ``address`` (127.x.y.z)."""
    session = requests.Session()
    adapter = SourceAddressAdapter(address)
    session.mount("http://", adapter)
    return session


def loopback(n: int) -> str:
    """The ``n``-th loopback source address from 127.0.1.0 on (127.0.0.1 is left alone)."""
    return f"127.0.{1 + n // 250}.{n % 250 + 1}"


def start_apis(start: Start, redis_url: str, count: int, **settings: str) -> list[str]:
    bases = []
    for _ in range(count):
        port = free_port()
        start("yardmaster.api", "--port", str(port), redis_url=redis_url, **settings)
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        eventually(lambda b=base: requests.get(f"{b}/healthz", timeout=2).ok, 30, "api up")
    return bases


def listen(base: str, seen: list[dict[str, Any]], connected: threading.Event) -> None:
    """Collect the queue's stream (id, event, data) until the release of A02 arrives."""
    with requests.get(f"{base}/queue/events", stream=True, timeout=60) as response:
        event: dict[str, Any] = {}
        for line in response.iter_lines(chunk_size=None, decode_unicode=True):
            connected.set()
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif not line and event:
                seen.append(event)
                if event.get("event") == "release" and event["data"]["token"] == "A02":
                    return
                event = {}


def test_200_clients_on_two_api_processes_are_served_strictly_in_turn(
    start: Start, redis_url: str
) -> None:
    bases = start_apis(start, redis_url, 2, queue_view_seconds="5", queue_head_seconds="30")
    served: list[str] = []

    def client(n: int) -> None:
        base, http = bases[n % 2], session_from(loopback(n % 50))  # 4 clients per address
        mine = http.post(f"{base}/queue/tokens", timeout=30).json()
        body = {"token": mine["token"], "claim": mine["claim"]}
        while True:
            answer = http.post(f"{base}/queue/redeem", json=body, timeout=30)
            if answer.status_code == 200:
                served.append(mine["token"])
                http.post(f"{base}/queue/release", json=body, timeout=30)
                return
            assert answer.status_code == 409, answer.text
            time.sleep(0.02 * answer.json()["position"])  # polls its turn, more often near it

    with ThreadPoolExecutor(max_workers=200) as pool:
        list(pool.map(client, range(200)))

    assert len(served) == 200
    log = [
        (e.type.value, e.token) for e in TurnQueue(redis.Redis.from_url(redis_url)).events_after()
    ]
    joined = [token for kind, token in log if kind == "append"]
    assert [token for kind, token in log if kind == "serve"] == joined  # strictly in turn
    kinds = [kind for kind, _ in log if kind in ("serve", "release")]
    assert kinds == ["serve", "release"] * 200  # one viewer at a time
    live: set[str] = set()
    for kind, token in log:  # a string is issued again only once its holder left the queue
        if kind == "append":
            assert token not in live, token
            live.add(token)
        elif kind in ("serve", "expire", "remove"):
            live.remove(token)
    assert live == set()


def test_clients_of_different_api_processes_see_the_same_stream(
    start: Start, redis_url: str
) -> None:
    bases = start_apis(start, redis_url, 2, queue_view_seconds="5")
    streams: list[list[dict[str, Any]]] = [[], []]
    ready = [threading.Event(), threading.Event()]
    listeners = [
        threading.Thread(target=listen, args=(base, seen, up), daemon=True)
        for base, seen, up in zip(bases, streams, ready, strict=True)
    ]
    for listener in listeners:
        listener.start()
    for up in ready:
        assert up.wait(10)

    taken = [requests.post(f"{bases[n % 2]}/queue/tokens", timeout=5).json() for n in range(3)]
    for n, mine in enumerate(taken):
        body = {"token": mine["token"], "claim": mine["claim"]}
        assert requests.post(f"{bases[n % 2]}/queue/redeem", json=body, timeout=5).ok
        requests.post(f"{bases[1 - n % 2]}/queue/release", json=body, timeout=5)
    for listener in listeners:
        listener.join(timeout=20)

    def changes(seen: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
        return [(e["id"], e["event"], e["data"]["token"]) for e in seen if e["event"] != "snapshot"]

    assert changes(streams[0]) == changes(streams[1])
    assert [kind for _, kind, _ in changes(streams[0])] == ["append"] * 3 + ["serve", "release"] * 3
