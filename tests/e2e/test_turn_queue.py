"""The turn queue across several API processes: strictly first come first served under 200
concurrent clients, one viewer at a time, and the same live stream on every process; and
owned turns: thousands of attempts to steal a turn from 2,000 source addresses all fail.

Clients come from several loopback addresses (on Linux any 127.x.y.z can be a source
address), as an address may hold only a few waiting tokens (YARDMASTER_QUEUE_TOKENS_PER_ADDRESS).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import requests
from requests.adapters import HTTPAdapter

from e2e.stack import Start
from support import eventually, free_port
from yardmaster.shared.turnqueue import keys
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


ATTACKERS = 2000  # source addresses, 5 attempts each
ATTEMPTS = ("redeem", "release")
CLAIMS = ("none", "guess", "other")


def test_10000_attempts_from_2000_addresses_never_take_or_end_a_turn_that_is_not_theirs(
    start: Start, redis_url: str
) -> None:
    [base] = start_apis(start, redis_url, 1, queue_view_seconds="600", queue_head_seconds="600")
    viewer, head = session_from("127.0.100.1"), session_from("127.0.100.2")
    viewing = viewer.post(f"{base}/queue/tokens", timeout=10).json()  # A00, redeemed: its
    assert redeem(viewer, base, viewing).status_code == 200  # window is open (a release target)
    waiting = head.post(f"{base}/queue/tokens", timeout=10).json()  # A01: the head (a redeem one)
    others = [  # valid claims, of tokens that are neither
        session_from(f"127.0.101.{n // 5 + 1}").post(f"{base}/queue/tokens", timeout=10).json()
        for n in range(100)
    ]

    def attempt(n: int, number: int) -> tuple[str, bytes]:
        """Address ``n``'s attempt ``number``: each kind of (operation, claim) in turn."""
        kind = (n + number) % (len(ATTEMPTS) * len(CLAIMS))
        operation, claim = ATTEMPTS[kind // len(CLAIMS)], CLAIMS[kind % len(CLAIMS)]
        target = waiting if operation == "redeem" else viewing
        body = {"token": target["token"]}
        if claim == "guess":
            body["claim"] = secrets.token_urlsafe(32)
        elif claim == "other":
            body["claim"] = others[n % len(others)]["claim"]
        return operation, json.dumps(body).encode()

    answers = asyncio.run(attack(int(base.rsplit(":", 1)[1]), attempt))

    assert len(answers) == 10_000
    outcomes = {(operation, status, outcome) for operation, status, outcome in answers}
    assert outcomes <= {
        (operation, 403, refusal)
        for operation in ATTEMPTS
        for refusal in ("claim_required", "wrong_claim")
    }, outcomes  # none succeeded (200), none was even taken for the holder's (409)
    snapshot = requests.get(f"{base}/queue", timeout=10).json()
    assert (snapshot["viewer"], snapshot["waiting"][0]) == (viewing["token"], waiting["token"])
    assert release(viewer, base, viewing).json() == {"status": "released"}
    assert redeem(head, base, waiting).status_code == 200  # the rightful holder, in turn
    store = redis.Redis.from_url(redis_url)
    struck = list(store.scan_iter(keys.strikes_key("*"), count=1000))
    assert len(struck) == ATTACKERS  # each address was seen as itself, and none is banned
    assert list(store.scan_iter(keys.ban_key("*"))) == []


def test_a_guessing_address_is_banned_by_its_fifth_wrong_claim_and_a_strangers_release_refused(
    start: Start, redis_url: str
) -> None:
    [base] = start_apis(start, redis_url, 1)
    holder, guesser = session_from("127.0.102.1"), session_from("127.0.102.2")
    mine = holder.post(f"{base}/queue/tokens", timeout=10).json()
    assert redeem(holder, base, mine).status_code == 200

    refused = guesser.post(f"{base}/queue/release", json={"token": mine["token"]}, timeout=10)
    assert (refused.status_code, refused.json()["outcome"]) == (403, "claim_required")
    wrong = 0
    while guesser.post(f"{base}/queue/tokens", timeout=10).status_code != 403:
        body = {"token": mine["token"], "claim": secrets.token_urlsafe(32)}
        answer = guesser.post(f"{base}/queue/release", json=body, timeout=10)
        assert (answer.status_code, answer.json()["outcome"]) == (403, "wrong_claim")
        wrong += 1
        assert wrong <= 5, "still not banned after 5 wrong claims"

    assert wrong == 5
    assert guesser.get(f"{base}/queue", timeout=10).status_code == 403  # banned everywhere
    assert requests.get(f"{base}/queue", timeout=10).json()["viewer"] == mine["token"]
    assert release(holder, base, mine).json() == {"status": "released"}


async def attack(
    port: int, attempt: Callable[[int, int], tuple[str, bytes]]
) -> list[tuple[str, int, str]]:
    """Five attempts from each of ATTACKERS addresses, 64 addresses at a time, each on one
    keep-alive connection (asyncio streams: the test's own CPU stays small beside the API's);
    (operation, status, outcome) of every answer."""
    slots = asyncio.Semaphore(64)

    async def from_address(n: int) -> list[tuple[str, int, str]]:
        async with slots:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(loopback(n), 0)
            )
            answers = []
            for number in range(5):
                operation, body = attempt(n, number)
                head = (
                    f"POST /queue/{operation} HTTP/1.1\r\nHost: api\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status, answer = await read_answer(reader)
                answers.append((operation, status, answer.get("outcome", "")))
            writer.close()
            return answers

    batches = await asyncio.gather(*(from_address(n) for n in range(ATTACKERS)))
    return [answer for batch in batches for answer in batch]


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one HTTP/1.1 answer (with a Content-Length)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    length = int(next(v for k, v in fields.items() if k.lower() == "content-length"))
    return int(head[0].split()[1]), json.loads(await reader.readexactly(length))


def redeem(http: requests.Session, base: str, mine: dict[str, Any]) -> requests.Response:
    body = {"token": mine["token"], "claim": mine["claim"]}
    return http.post(f"{base}/queue/redeem", json=body, timeout=10)


def release(http: requests.Session, base: str, mine: dict[str, Any]) -> requests.Response:
    body = {"token": mine["token"], "claim": mine["claim"]}
    return http.post(f"{base}/queue/release", json=body, timeout=10)
