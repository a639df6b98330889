"""Benchmark: the turn queue's throughput and live fan-out (``make bench``).

Starts the API (its default settings: gunicorn, 2 gevent workers) on a private Redis. Throughput:
``--clients`` concurrent keep-alive clients driven by wrk (Debian package ``wrk``, installed
by ``make system-deps``; C, so the load takes little of the 2 cores) for ``--seconds`` each,
first against ``GET /healthz`` (the bare reference endpoint on the same server), then running
the queue: take a token, poll ``redeem`` until served, release. Every request counts as one
operation. ``--rounds`` alternating pairs, with the API reaching Redis over TCP and then over
its Unix socket. Fan-out: ``--viewers`` clients hold ``GET /queue/events`` open while tokens
are taken one at a time (viewers spread over 4 processes); latency = from just before the take
to the event's arrival at each viewer. Targets: queue operations >= 50 % of the reference's
requests/s; fan-out p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import shutil
import statistics
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

WRK_QUEUE_SCRIPT = r"""
-- One connection per wrk thread, so each thread's state is one client's: take a token, poll
-- redeem until served (or expired), release, and again.
local state, body = "take", nil
local json = {["Content-Type"] = "application/json"}
request = function()
  if state == "take" then return wrk.format("POST", "/queue/tokens") end
  if state == "redeem" then return wrk.format("POST", "/queue/redeem", json, body) end
  return wrk.format("POST", "/queue/release", json, body)
end
response = function(status, headers, text)
  if state == "take" then
    if status == 201 then
      local token = text:match('"token":%s*"(%w+)"')
      local ticket = text:match('"ticket":%s*(%d+)')
      body = string.format('{"token": "%s", "ticket": %s}', token, ticket)
      state = "redeem"
    end
  elseif state == "redeem" then
    if status == 200 then state = "release" elseif status ~= 409 then state = "take" end
  else
    state = "take"
  end
end
"""


def throughput(base: str, mode: str, clients: int, seconds: float) -> float:
    """Requests per second of ``clients`` keep-alive clients driven by wrk (C, event loop),
    so that the load generator takes little of the 2 cores the server is measured on."""
    command = ["wrk", f"-t{clients}", f"-c{clients}", f"-d{seconds:g}s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if mode == "queue":
            script.write(WRK_QUEUE_SCRIPT)
            script.flush()
            command += ["-s", script.name, f"{base}/queue/tokens"]
        else:
            command.append(f"{base}/healthz")
        report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if errors and mode == "hello":
        raise RuntimeError(f"reference endpoint answered errors:\n{report}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]


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
        ready.get(timeout=60)  # every viewer connected
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


def start_api(tmp: str, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The API (default settings: gunicorn, 2 gevent workers) on ``redis_url``, answering;
    and its URL."""
    port = free_port()
    env = base_env(
        data_dir=tmp,
        redis_url=redis_url,
        queue_view_seconds="5",
    )
    api = subprocess.Popen(
        [PYTHON, "-m", "yardmaster.api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=2)
            return api, base
        except requests.RequestException:  # not listening yet, or still starting its workers
            if time.monotonic() > deadline:
                api.kill()
                raise
            time.sleep(0.1)


def stop_api(api: subprocess.Popen[bytes]) -> None:
    api.terminate()
    api.wait(timeout=60)


def measure_ratios(
    tmp: str, server: RedisServer, transport: str, args: argparse.Namespace
) -> list[tuple[float, float]]:
    """``--rounds`` pairs (reference, queue) of requests/s, alternating, on one API."""
    url = server.unix_url if transport == "unix" else server.url
    api, base = start_api(tmp, url)
    try:
        pairs = []
        for _ in range(args.rounds):
            redis.Redis.from_url(server.url).flushall()
            hello = throughput(base, "hello", args.clients, args.seconds)
            queue = throughput(base, "queue", args.clients, args.seconds)
            pairs.append((hello, queue))
        return pairs
    finally:
        stop_api(api)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("turn_queue bench needs wrk: run `make system-deps` (apt-get install wrk)")
        return 1
    # a short folder: a Unix socket's path must stay under ~100 characters
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="ymq") as tmp:
        server = RedisServer(Path(tmp) / "redis", unix_socket=True).start()
        try:
            print(
                f"turn queue, gunicorn 2 gevent workers, {args.clients} wrk clients, "
                f"{args.rounds} rounds of {args.seconds:g} s:"
            )
            for transport in ("tcp", "unix"):
                pairs = measure_ratios(tmp, server, transport, args)
                ratios = sorted(queue / hello for hello, queue in pairs)
                shown = ", ".join(f"{hello:.0f}/{queue:.0f}" for hello, queue in pairs)
                print(
                    f"  Redis over {transport:4}: reference/queue requests/s {shown}; "
                    f"queue/reference median {statistics.median(ratios):.2f} "
                    f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
                )
            redis.Redis.from_url(server.url).flushall()  # an empty queue for the fan-out
            api, base = start_api(tmp, server.url)
            try:
                latencies = fan_out(base, args.viewers, args.events)
            finally:
                stop_api(api)
            print(
                f"  fan-out to {args.viewers} viewers, {args.events} events: median "
                f"{pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
                f"max {max(latencies):.1f} ms ({len(latencies)} deliveries)"
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
