"""Redis key templates: every key Yardmaster writes lives under :data:`PREFIX`, named here.

RQ keeps its own keys under ``rq:``; the queue names it uses are in :mod:`.queues`.
"""

PREFIX = "yardmaster:"

#: A live process announces itself here (JSON, expires after three missed beats).
HEARTBEAT = PREFIX + "heartbeat:{service}:{instance}"
HEARTBEAT_PATTERN = PREFIX + "heartbeat:*"


#: Pub/sub channel of heartbeats: each record as it is written (JSON, as under HEARTBEAT), and
#: ``{"service", "instance", "gone": true}`` when a process stops.
PROCESS_EVENTS = PREFIX + "processes:events"


def heartbeat_key(service: str, instance: str) -> str:
    """The heartbeat key of one process."""
    return HEARTBEAT.format(service=service, instance=instance)


#: Pub/sub channel of every job's state and progress changes (JSON job views).
JOB_EVENTS = PREFIX + "jobs:events"
#: Pub/sub channel of customers just deactivated (``{"customer_id": N}``, published once the
#: deactivation committed): every API process ends the live streams that speak for them.
CUSTOMER_DEACTIVATIONS = PREFIX + "customers:deactivated"
#: Pub/sub channel of control messages to the worker running one job (pause, stop, preempt).
JOB_CONTROL = PREFIX + "job:{job_id}:control"
#: Lease of the attempt running a job: "<attempt>:<worker>", renewed while the work lives.
JOB_LEASE = PREFIX + "job:{job_id}:lease"


#: Set while a running job has been asked to yield its worker (so it is asked only once).
JOB_YIELD = PREFIX + "job:{job_id}:yield"


def job_yield_key(job_id: str) -> str:
    """The marker of a yield request to one job."""
    return JOB_YIELD.format(job_id=job_id)


def job_control_channel(job_id: str) -> str:
    """The control channel of one job."""
    return JOB_CONTROL.format(job_id=job_id)


def job_lease_key(job_id: str) -> str:
    """The lease key of one job."""
    return JOB_LEASE.format(job_id=job_id)


#: File claims, one namespace per bucket directory (``bucket`` = a hash of its absolute path):
#: ``lease:<file>`` (owner token), ``fence`` (counter: claims taken, so attempts made),
#: ``done`` and ``attempts`` (hashes), ``lease-losses`` (counter, below).
FILES = PREFIX + "files:{bucket}:"
#: Pub/sub channel of file ledger changes: the row as ``GET /files`` shows it (JSON), published
#: by the file worker once the change is committed (``loaded``, ``done``, ``quarantined``).
FILE_EVENTS = PREFIX + "files:events"
#: Counter of file leases their worker lost (renewal refused or overdue, completion refused).
FILE_LEASE_LOSSES = FILES + "lease-losses"


def files_namespace(bucket: str) -> str:
    """The key prefix of one bucket's file claims."""
    return FILES.format(bucket=bucket)


def file_lease_losses_key(bucket: str) -> str:
    """The lease-loss counter of one bucket's file workers."""
    return FILE_LEASE_LOSSES.format(bucket=bucket)


#: Jobs of one site holding a run slot (set of job ids), and its jobs parked until a slot frees
#: (sorted set, lowest score first).
SITE_RUNNING = PREFIX + "site:{site_id}:running"
SITE_PARKED = PREFIX + "site:{site_id}:parked"
SITE_RUNNING_PATTERN = PREFIX + "site:*:running"
#: Held for one checkpoint interval by the job yielding to an urgent job waiting in a queue.
YIELD_GATE = PREFIX + "scheduling:yield-gate"
#: Held by the one report worker promoting aged jobs in a given sweep.
AGING_LOCK = PREFIX + "scheduling:aging-lock"


def site_running_key(site_id: int) -> str:
    """The run slots of one site."""
    return SITE_RUNNING.format(site_id=site_id)


def site_parked_key(site_id: int) -> str:
    """The parked jobs of one site."""
    return SITE_PARKED.format(site_id=site_id)
