"""Benchmark: the turn queue's throughput and live fan-out (``make bench``).

Starts the API (gunicorn, 2 workers x 128 threads) on a private Redis. Throughput: ``--clients``
concurrent clients (threads spread over 4 processes, keep-alive sessions) for ``--seconds``
each, first against ``GET /healthz`` (the bare reference endpoint on the same server), then
running the queue: take a token, poll ``redeem`` until served, release. Every request counts
as one operation. Fan-out: ``--viewers`` clients hold ``GET /queue/events`` open while tokens
are taken one at a time (viewers spread over 4 processes); latency = from just before the take
to the event's arrival at each viewer. Targets: queue operations >= 50 % of the reference's
requests/s; fan-out p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import redis
import requests

from support import PYTHON, RedisServer, base_env, free_port


def hammer(base: str, mode: str, threads: int, seconds: float, out: multiprocessing.Queue) -> None:
    """One load process: ``threads`` clients for ``seconds``; puts its request count on ``out``."""
    counts = [0] * threads
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            if mode == "hello":
                session.get(f"{base}/healthz", timeout=30)
                counts[k] += 1
                continue
            mine = session.post(f"{base}/queue/tokens", timeout=30).json()
            counts[k] += 1
            body = {"token": mine["token"], "ticket": mine["ticket"]}
            while time.monotonic() < stop_at:
                answer = session.post(f"{base}/queue/redeem", json=body, timeout=30)
                counts[k] += 1
                if answer.status_code == 200:
                    session.post(f"{base}/queue/release", json=body, timeout=30)
                    counts[k] += 1
                    break

    workers = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(sum(counts))


def throughput(base: str, mode: str, clients: int, seconds: float) -> float:
    """Requests per second of ``clients`` concurrent clients in 4 load processes."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    per = [clients // 4 + (1 if k < clients % 4 else 0) for k in range(4)]
    procs = [
        multiprocessing.Process(target=hammer, args=(base, mode, n, seconds, out)) for n in per
    ]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    total = sum(out.get() for _ in procs)
    elapsed = time.monotonic() - started
    for proc in procs:
        proc.join()
    return total / elapsed


def watch(base: str, viewers: int, events: int, ready: Any, out: Any) -> None:
    """One viewer process: ``viewers`` streams; puts (token, arrival time) pairs on ``out``."""
    arrivals: list[tuple[str, float]] = []
    lock = threading.Lock()

    def viewer() -> None:
        with requests.get(f"{base}/queue/events", stream=True, timeout=120) as response:
            first, seen = True, 0
            # chunk_size=None: every chunk as it arrives (the default waits for 512 bytes)
            for line in response.iter_lines(chunk_size=None, decode_unicode=True):
                if first:
                    first = False
                    ready.put(1)
                if line.startswith("data: ") and '"type": "append"' in line:
                    token = line.split('"token": "')[1][:3]
                    with lock:
                        arrivals.append((token, time.time()))
                    seen += 1
                    if seen == events:
                        return

    threads = [threading.Thread(target=viewer, daemon=True) for _ in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    out.put(arrivals)


def fan_out(base: str, viewers: int, events: int, processes: int = 4) -> list[float]:
    """Latencies (ms) from just before each take to its event at every viewer; the viewers
    are spread over ``processes`` so that their own GIL does not delay the readings."""
    ready: multiprocessing.Queue = multiprocessing.Queue()
    out: multiprocessing.Queue = multiprocessing.Queue()
    per = [viewers // processes + (1 if k < viewers % processes else 0) for k in range(processes)]
    procs = [multiprocessing.Process(target=watch, args=(base, n, events, ready, out)) for n in per]
    for proc in procs:
        proc.start()
    for _ in range(viewers):
        ready.get(timeout=60)  # every viewer connected (else: not enough API threads)
    sent: dict[str, float] = {}
    session = requests.Session()
    for _ in range(events):
        before = time.time()
        sent[session.post(f"{base}/queue/tokens", timeout=30).json()["token"]] = before
        time.sleep(0.05)
    arrivals = [pair for _ in procs for pair in out.get(timeout=120)]
    for proc in procs:
        proc.join()
    return [(when - sent[token]) * 1000 for token, when in arrivals]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        port = free_port()
        env = base_env(
            data_dir=tmp,
            redis_url=server.url,
            log_level="WARNING",
            api_workers="2",
            api_threads="128",
            queue_view_seconds="5",
        )
        api = subprocess.Popen(
            [PYTHON, "-m", "yardmaster.api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/healthz", timeout=2)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            hello = throughput(base, "hello", args.clients, args.seconds)
            queue = throughput(base, "queue", args.clients, args.seconds)
            print(f"turn queue, gunicorn 2 workers x 128 threads, {args.clients} clients:")
            print(f"  GET /healthz (reference): {hello:8.0f} requests/s")
            print(
                f"  queue operations:         {queue:8.0f} requests/s  ({queue / hello:.2f} of it)"
            )
            redis.Redis.from_url(server.url).flushall()  # an empty queue for the fan-out
            latencies = fan_out(base, args.viewers, args.events)
            print(
                f"  fan-out to {args.viewers} viewers, {args.events} events: median "
                f"{pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
                f"max {max(latencies):.1f} ms ({len(latencies)} deliveries)"
            )
        finally:
            api.terminate()
            api.wait(timeout=60)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
