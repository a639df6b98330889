"""Benchmark: priority scheduling against plain FIFO on a mixed workload (``make bench``).

For 2 and 4 report workers, and for each policy (``YARDMASTER_SCHEDULING=priority`` and
``fifo``), submits ``--jobs`` simulated-work jobs over 20 sites through ``POST /work`` as a
Poisson stream at ``--load`` of the workers' capacity (the per-job overhead is measured first
with a burst of the lightest jobs). The same jobs, in the same order at the same moments, for
both policies. Job classes follow a skewed distribution (most jobs
light, a few heavy); execution times are scaled down by ``YARDMASTER_WORK_TIME_SCALE`` and the
aging base with them. Sites differ in size (2 high, 4 medium, 14 low volume) and customers in
how much they submit, so every tier occurs. Reports wait (created -> started) p50/p95/max per
class and per tier, and throughput; then the targets: light classes' p95 wait at least 10x
lower than FIFO's, no class's max wait above its aging bound, throughput within 5 % of FIFO.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from support import PYTHON, RedisServer, base_env, free_port
from yardmaster.shared.db import make_engine
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Customer, Job, Site
from yardmaster.shared.scheduling import CLASS_LIMITS, JobClass, aging_bound

WORK_TIME_SCALE = 0.5
AGING_BASE = 5.0  # seconds, already scaled: classes 1 and 2 bound 5 s ... class 5 bound 40 s
CLASS_WEIGHTS = {1: 0.30, 2: 0.25, 3: 0.20, 4: 0.15, 5: 0.10}
SITE_RECORDS = [50_001] * 2 + [10_001] * 4 + [200] * 14  # high, medium, low volume
CUSTOMERS_PER_SITE = 5


def post(base: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def populate(engine: Engine) -> list[tuple[int, int]]:
    """Sites with their record volumes; (customer, site) pairs that submit jobs."""
    now = dt.datetime.now(dt.UTC)
    submitters = []
    with engine.begin() as connection:
        for n, records in enumerate(SITE_RECORDS, start=1):
            site = connection.execute(
                insert(Site).values(name=f"site-{n}", created_at=now, updated_at=now)
            ).inserted_primary_key
            assert site is not None
            site_id = int(site[0])
            rows = [
                {"site_id": site_id, "name": f"c{n}-{k}", "created_at": now, "updated_at": now}
                for k in range(records)
            ]
            for start in range(0, len(rows), 5000):
                connection.execute(insert(Customer), rows[start : start + 5000])
            ids = connection.scalars(
                select(Customer.id)
                .where(Customer.site_id == site_id)
                .order_by(Customer.id)
                .limit(CUSTOMERS_PER_SITE)
            ).all()
            submitters.extend((int(c), site_id) for c in ids)
    return submitters


def workload(submitters: list[tuple[int, int]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` jobs: skewed classes, customers weighted 1/rank (a few submit a lot)."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(submitters))]
    order = list(submitters)
    rng.shuffle(order)
    jobs = []
    for _ in range(count):
        cls = rng.choices(list(CLASS_WEIGHTS), list(CLASS_WEIGHTS.values()))[0]
        upper = CLASS_LIMITS[cls - 1]
        customer, site = rng.choices(order, weights)[0]
        seconds = round(rng.uniform(upper / 10, upper), 7) or upper
        jobs.append({"customer": customer, "site": site, "execution_time": seconds})
    return jobs


class Stack:
    """A private API and ``workers`` report workers on one database and Redis."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str, policy: str, n: int):
        env = base_env(
            data_dir=str(workdir),
            database_url=database_url,
            redis_url=redis_url,
            log_level="WARNING",
            scheduling=policy,
            work_time_scale=repr(WORK_TIME_SCALE),
            aging_base_seconds=repr(AGING_BASE),
            api_workers="2",
        )
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        command = [PYTHON, "-m"]
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.processes = [
            subprocess.Popen([*command, "yardmaster.api", "--port", str(port)], env=env, **quiet)
        ] + [
            subprocess.Popen(
                [*command, "yardmaster.report_worker", "--name", f"rw-{k}"], env=env, **quiet
            )
            for k in range(n)
        ]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(1.0)  # the workers' first heartbeats (site caps count live workers)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)


def run(
    workdir: Path, server: RedisServer, policy: str, workers: int, jobs: list[dict[str, Any]],
    rate: float, seed: int,
) -> list[Job]:  # fmt: skip
    """Submit ``jobs`` one by one as a Poisson stream of ``rate`` jobs/s (0: all at once);
    every job once it finished."""
    import redis

    redis.Redis.from_url(server.url).flushall()
    data = workdir / f"{policy}-{workers}-{len(jobs)}-{rate:.3f}"
    data.mkdir()
    database_url = f"sqlite:///{data / 'db.sqlite'}"
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    assert populate(engine) == submitter_ids()  # the ids the workload was drawn with
    stack = Stack(data, database_url, server.url, policy, workers)
    try:
        ids: list[str] = []
        if rate <= 0:
            ids = [j["id"] for j in post(stack.base, "/work", jobs)["jobs"]]
        else:
            rng = random.Random(seed)
            due = time.monotonic()
            for job in jobs:
                due += rng.expovariate(rate)
                time.sleep(max(0.0, due - time.monotonic()))
                ids.append(post(stack.base, "/work", job)["id"])
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with Session(engine) as session:
                done = session.scalars(
                    select(Job).where(Job.id.in_(ids), Job.state == "finished")
                ).all()
            if len(done) == len(ids):
                return list(done)
            time.sleep(0.5)
        raise RuntimeError(f"{policy}, {workers} workers: jobs not finished in 900 s")
    finally:
        stack.stop()
        engine.dispose()


def waits(jobs: list[Job]) -> list[float]:
    return [(j.started_at - j.created_at).total_seconds() for j in jobs if j.started_at]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def throughput(jobs: list[Job]) -> float:
    first = min(j.created_at for j in jobs)
    last = max(j.finished_at for j in jobs if j.finished_at)
    return len(jobs) / (last - first).total_seconds()


def groups(jobs: list[Job]) -> dict[str, list[Job]]:
    found: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        found[f"class {job.job_class}"].append(job)
        found[f"volume {job.volume_tier}"].append(job)
        found[f"activity {job.activity_tier}"].append(job)
    return dict(sorted(found.items()))


def report(workers: int, ours: list[Job], fifo: list[Job], load: float) -> list[str]:
    print(f"\n{workers} workers, offered load ~{load:.0%}: wait (created -> started), seconds")
    print(f"  {'group':22} {'n':>5}   {'priority p50/p95/max':>24}   {'FIFO p50/p95/max':>24}")
    mine, theirs = groups(ours), groups(fifo)
    for name, members in mine.items():
        a, b = waits(members), waits(theirs.get(name, []))
        row = f"  {name:22} {len(members):5}   "
        row += f"{pct(a, 0.5):7.2f} {pct(a, 0.95):7.2f} {max(a):8.2f}   "
        row += f"{pct(b, 0.5):7.2f} {pct(b, 0.95):7.2f} {max(b):8.2f}" if b else ""
        print(row)
    light = [j for j in ours if j.job_class in (1, 2)]
    light_fifo = [j for j in fifo if j.job_class in (1, 2)]
    ratio = pct(waits(light_fifo), 0.95) / max(pct(waits(light), 0.95), 1e-3)
    ours_tp, fifo_tp = throughput(ours), throughput(fifo)
    print(f"  throughput: priority {ours_tp:.1f} jobs/s, FIFO {fifo_tp:.1f} jobs/s "
          f"(ratio {ours_tp / fifo_tp:.3f})")  # fmt: skip
    print(f"  light classes (1, 2) p95 wait: FIFO / priority = {ratio:.1f}x")
    missed = []
    if ratio < 10:
        missed.append(f"{workers} workers: light p95 only {ratio:.1f}x lower than FIFO")
    for cls in JobClass:
        members = [j for j in ours if j.job_class == cls]
        bound = aging_bound(cls, AGING_BASE)
        if members and max(waits(members)) > bound:
            missed.append(
                f"{workers} workers: class {cls} max wait {max(waits(members)):.2f} s "
                f"> its bound {bound:g} s"
            )
    if ours_tp < 0.95 * fifo_tp:
        missed.append(f"{workers} workers: throughput {ours_tp / fifo_tp:.3f} of FIFO")
    return missed


def capacity(workdir: Path, server: RedisServer, workers: int, jobs: list[dict[str, Any]]) -> float:
    """Jobs per second the workers finish when never idle: the per-job overhead, measured on
    a burst of the lightest jobs under FIFO, plus the workload's mean (scaled) work."""
    probe = [{**jobs[0], "execution_time": 0.0001} for _ in range(20 * workers)]
    done = run(workdir, server, "fifo", workers, probe, rate=0, seed=0)
    first = min(j.started_at for j in done if j.started_at)
    last = max(j.finished_at for j in done if j.finished_at)
    overhead = (last - first).total_seconds() * workers / len(done)
    work = WORK_TIME_SCALE * sum(j["execution_time"] for j in jobs) / len(jobs)
    print(f"  per-job overhead {overhead * 1000:.0f} ms, mean work {work * 1000:.0f} ms")
    return workers / (overhead + work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--load", type=float, default=0.9, help="offered load, share of capacity")
    parser.add_argument("--workers", default="2,4")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = RedisServer(workdir / "redis").start()
        try:
            ids = submitter_ids()
            jobs = workload(ids, args.jobs, args.seed)
            for workers in [int(w) for w in args.workers.split(",")]:
                print(f"\n{workers} workers:")
                rate = args.load * capacity(workdir, server, workers, jobs)
                print(f"  capacity {rate / args.load:.2f} jobs/s; Poisson arrivals at {rate:.2f}/s")
                ours = run(workdir, server, "priority", workers, jobs, rate, args.seed)
                fifo = run(workdir, server, "fifo", workers, jobs, rate, args.seed)
                missed += report(workers, ours, fifo, args.load)
        finally:
            server.stop()
    print("\ntargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 0


def submitter_ids() -> list[tuple[int, int]]:
    """(customer, site) ids of the submitters ``populate`` creates in a fresh database."""
    found = []
    first = 1
    for site, records in enumerate(SITE_RECORDS, start=1):
        found += [(first + k, site) for k in range(CUSTOMERS_PER_SITE)]
        first += records
    return found


if __name__ == "__main__":
    sys.exit(main())
