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

One client address may hold only a few waiting tokens (``YARDMASTER_QUEUE_TOKENS_PER_ADDRESS``),
so the clients come from several loopback addresses (on Linux any 127.x.y.z can be a source
address): wrk's connections each from their own (wrk cannot choose one, so a tiny ``connect()``
wrapper, compiled with gcc and preloaded, binds each new socket to the next of
``SOURCE_COUNT`` addresses from ``SOURCE_FIRST``), and the fan-out's takes from several.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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
from requests.adapters import HTTPAdapter

from support import PYTHON, RedisServer, base_env, free_port

WRK_QUEUE_SCRIPT = r"""
-- One connection per wrk thread, so each thread's state is one client's: take a token, poll
-- redeem until served (or expired), release, and again. Redeem and release send the token's
-- claim. Takes refused for the caller's address (429) are counted and reported at the end.
local threads = {}
setup = function(thread) table.insert(threads, thread) end
refused = 0
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
      local claim = text:match('"claim":%s*"([%w_-]+)"')
      body = string.format('{"token": "%s", "claim": "%s"}', token, claim)
      state = "redeem"
    elseif status == 429 then
      refused = refused + 1
    end
  elseif state == "redeem" then
    if status == 200 then state = "release" elseif status ~= 409 then state = "take" end
  else
    state = "take"
  end
end
done = function()
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("refused") end
  io.write(string.format("Takes refused for their address: %d\n", total))
end
"""


# Preloaded into wrk: every IPv4 connect() binds its socket first to the next of SOURCE_COUNT
# loopback addresses from SOURCE_FIRST, so each of wrk's connections is its own client address.
SOURCE_SHIM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

static unsigned next_source;

int connect(int fd, const struct sockaddr *to, socklen_t size) {
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    const char *first = getenv("SOURCE_FIRST"), *count = getenv("SOURCE_COUNT");
    if (!real_connect) real_connect = dlsym(RTLD_NEXT, "connect");
    if (to->sa_family == AF_INET && first && count) {
        unsigned n = __atomic_fetch_add(&next_source, 1, __ATOMIC_RELAXED) % atoi(count);
        struct sockaddr_in from = {.sin_family = AF_INET};
        from.sin_addr.s_addr = htonl(ntohl(inet_addr(first)) + n);
        bind(fd, (const struct sockaddr *)&from, sizeof from);
    }
    return real_connect(fd, to, size);
}
"""
#: wrk's connections come from 127.0.1.1 and the addresses after it, one each.
SOURCE_FIRST = "127.0.1.1"


def source_shim(folder: str) -> Path:
    """The compiled ``connect()`` wrapper (gcc), for LD_PRELOAD."""
    source, shim = Path(folder) / "source_shim.c", Path(folder) / "source_shim.so"
    source.write_text(SOURCE_SHIM)
    gcc = ["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"]
    subprocess.run(gcc, check=True)
    return shim


def throughput(base: str, mode: str, clients: int, seconds: float, shim: Path) -> float:
    """Requests per second of ``clients`` keep-alive clients driven by wrk (C, event loop),
    so that the load generator takes little of the 2 cores the server is measured on; each
    client connects from its own loopback address."""
    command = ["wrk", f"-t{clients}", f"-c{clients}", f"-d{seconds:g}s"]
    env = {
        **os.environ,
        "LD_PRELOAD": str(shim),
        "SOURCE_FIRST": SOURCE_FIRST,
        "SOURCE_COUNT": str(clients),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if mode == "queue":
            script.write(WRK_QUEUE_SCRIPT)
            script.flush()
            command += ["-s", script.name, f"{base}/queue/tokens"]
        else:
            command.append(f"{base}/healthz")
        report = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if errors and mode == "hello":
        raise RuntimeError(f"reference endpoint answered errors:\n{report}")
    refused = re.search(r"Takes refused for their address: (\d+)", report)
    if mode == "queue" and (refused is None or int(refused[1]) > 0):
        raise RuntimeError(f"takes were refused for their address (429):\n{report}")
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
    sessions = [session_from(f"127.0.2.{n + 1}") for n in range(events // 2 + 1)]  # 2 takes each
    for session in sessions:  # connected before the clock runs: keep-alive, as before
        session.get(f"{base}/healthz", timeout=30)
    for n in range(events):
        before = time.time()
        taken = sessions[n // 2].post(f"{base}/queue/tokens", timeout=30).json()
        sent[taken["token"]] = before
        time.sleep(0.05)
    arrivals = [pair for _ in procs for pair in out.get(timeout=120)]
    for proc in procs:
        proc.join()
    return [(when - sent[token]) * 1000 for token, when in arrivals]


class SourceAddressAdapter(HTTPAdapter):
    """Connections made from a chosen local address."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **options: Any) -> None:
        options["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **options)


def session_from(address: str) -> requests.Session:
    """A keep-alive session whose requests come from ``address`` (127.x.y.z)."""
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(address))
    return session


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
    tmp: str, server: RedisServer, transport: str, args: argparse.Namespace, shim: Path
) -> list[tuple[float, float]]:
    """``--rounds`` pairs (reference, queue) of requests/s, alternating, on one API."""
    url = server.unix_url if transport == "unix" else server.url
    api, base = start_api(tmp, url)
    try:
        pairs = []
        for _ in range(args.rounds):
            redis.Redis.from_url(server.url).flushall()
            hello = throughput(base, "hello", args.clients, args.seconds, shim)
            queue = throughput(base, "queue", args.clients, args.seconds, shim)
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
    if shutil.which("gcc") is None:
        print("turn_queue bench needs gcc, to give wrk's connections their own addresses")
        return 1
    # a short folder: a Unix socket's path must stay under ~100 characters
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="ymq") as tmp:
        shim = source_shim(tmp)
        server = RedisServer(Path(tmp) / "redis", unix_socket=True).start()
        try:
            print(
                f"turn queue, gunicorn 2 gevent workers, {args.clients} wrk clients, "
                f"{args.rounds} rounds of {args.seconds:g} s:"
            )
            for transport in ("tcp", "unix"):
                pairs = measure_ratios(tmp, server, transport, args, shim)
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
