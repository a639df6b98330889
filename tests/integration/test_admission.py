"""Site caps and aging in real Redis and databases: parked jobs start when a slot frees,
starving jobs are promoted to the front of the first queue."""

from __future__ import annotations

import datetime as dt

import redis
from rq import Queue
from sqlalchemy import Engine, update

from yardmaster.report_worker.admission import Admission
from yardmaster.shared import keys, queues
from yardmaster.shared.jobbus import enqueue_segment
from yardmaster.shared.jobs import JobKind, JobState
from yardmaster.shared.jobstore import JobStore, utcnow
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import Job
from yardmaster.shared.siteslots import SiteSlots, Slot


def admission_on(engine: Engine, redis_url: str, aging_base: float = 30.0) -> Admission:
    upgrade_to_head(engine)
    client = redis.Redis.from_url(redis_url)
    for n in (1, 2):  # two live report workers: a site may run one job at a time (share 0.5)
        client.set(keys.heartbeat_key("report-worker", f"w{n}"), "{}")
    return Admission(JobStore(engine), client, site_share=0.5, aging_base=aging_base)


def queued_job(admission: Admission, site_id: int | None, job_class: int = 5) -> Job:
    store = admission.store
    job = store.create(
        JobKind.WORK,
        {"execution_time": 1},
        queues.LOW,
        site_id=site_id,
        customer_id=None if site_id is None else 1,
        job_class=job_class,
    )
    store.set_segment(job.id, enqueue_segment(admission.redis, job))
    found = store.get(job.id)
    assert found is not None
    return found


def waited(engine: Engine, job_id: str, seconds: float) -> None:
    earlier = utcnow() - dt.timedelta(seconds=seconds)
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(enqueued_at=earlier))


def test_a_site_at_its_cap_parks_its_next_job_and_a_release_starts_it(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url)
    running, waiting = queued_job(admission, site_id=7), queued_job(admission, site_id=7)
    other_site = queued_job(admission, site_id=8)

    assert admission.admit(running) is Slot.TAKEN
    assert admission.admit(waiting) is Slot.PARKED
    assert admission.admit(other_site) is Slot.TAKEN
    assert admission.admit(running) is Slot.HELD_ALREADY

    admission.release(running)

    restarted = admission.store.get(waiting.id)
    assert restarted is not None
    assert restarted.state_version == waiting.state_version + 1  # a new segment, not the old one
    assert Queue(queues.LOW, connection=admission.redis).job_ids[0] == restarted.segment
    assert admission.admit(restarted) is Slot.TAKEN


def test_jobs_without_a_site_are_never_capped(engine: Engine, redis_url: str) -> None:
    admission = admission_on(engine, redis_url)

    assert admission.admit(queued_job(admission, site_id=None)) is None


def test_a_parked_job_stopped_meanwhile_is_skipped_for_the_next_one(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url)
    running = queued_job(admission, site_id=7)
    stopped, next_one = queued_job(admission, site_id=7), queued_job(admission, site_id=7)
    admission.admit(running)
    admission.admit(stopped)
    admission.admit(next_one)
    admission.store.transition(stopped.id, [JobState.QUEUED], JobState.STOPPED)

    admission.release(running)

    assert admission.admit(admission.store.get(next_one.id)) is Slot.TAKEN  # type: ignore[arg-type]


def test_a_slot_held_by_a_job_that_stopped_running_is_freed_by_the_next_sweeps(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url)
    lost, parked = queued_job(admission, site_id=7), queued_job(admission, site_id=7)
    admission.admit(lost)  # its worker died before claiming: the job is still queued
    admission.admit(parked)

    admission.sweep()  # first sight: only a suspect (it may be about to claim)
    assert SiteSlots(admission.redis).running(7) == {lost.id}
    admission.sweep()

    assert SiteSlots(admission.redis).running(7) == set()
    assert not SiteSlots(admission.redis).is_parked(7, parked.id)


def test_a_job_waiting_past_half_its_bound_goes_to_the_front_of_the_first_queue(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url, aging_base=1.0)  # class 5: bound 8 s
    starving, patient = queued_job(admission, site_id=None), queued_job(admission, site_id=None)
    waited(engine, starving.id, 4.5)
    waited(engine, patient.id, 2.5)  # far enough below 4 s for a slow machine
    Queue(queues.HIGH, connection=admission.redis).enqueue("math.sqrt", 4)
    now = utcnow()

    promoted = admission.promote_aged(now)

    assert promoted == [starving.id]
    job = admission.store.get(starving.id)
    assert job is not None
    assert (job.queue, job.promotions, job.state) == (queues.HIGH, 1, "queued")
    assert Queue(queues.HIGH, connection=admission.redis).job_ids[0] == job.segment
    assert starving.segment not in Queue(queues.LOW, connection=admission.redis).job_ids
    assert admission.promote_aged(now) == []  # once is enough: it is first in line now


def test_a_parked_job_is_not_promoted_it_waits_for_its_sites_slot(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url, aging_base=1.0)
    running, parked = queued_job(admission, site_id=7), queued_job(admission, site_id=7)
    admission.admit(running)
    admission.admit(parked)
    waited(engine, parked.id, 60)

    assert admission.promote_aged(utcnow()) == []


def test_a_light_job_is_never_parked_behind_its_own_sites_heavy_job(
    engine: Engine, redis_url: str
) -> None:
    admission = admission_on(engine, redis_url)
    heavy = queued_job(admission, site_id=7, job_class=5)
    light = queued_job(admission, site_id=7, job_class=1)
    admission.admit(heavy)

    assert admission.admit(light) is None  # runs at once, outside the site's cap
