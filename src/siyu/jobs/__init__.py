"""A small durable job queue inside our own database: enqueue, claim with a lease, run, retry, cron.

    from siyu.jobs import enqueue, job_handler

    @job_handler("contacts.recompute", max_attempts=5)
    def recompute(session, job): ...          # idempotent: it may run more than once

    enqueue(session, "contacts.recompute", {"contact_id": 7}, workspace_id=1)  # in your transaction

The worker (`siyu worker`, `siyu.jobs.worker.run_worker`) claims and runs due jobs.
"""

from siyu.jobs.queue import (
    JobOutcome,
    LeaseLost,
    claim,
    enqueue,
    extend_lease,
    fire_due_cron,
    heartbeat,
    run_job,
)
from siyu.jobs.registry import (
    JobRegistryError,
    Registry,
    UnknownJobError,
    cron,
    exponential_backoff,
    job_handler,
    poller,
    registry,
)

__all__ = [
    "JobOutcome",
    "JobRegistryError",
    "LeaseLost",
    "Registry",
    "UnknownJobError",
    "claim",
    "cron",
    "enqueue",
    "exponential_backoff",
    "extend_lease",
    "fire_due_cron",
    "heartbeat",
    "job_handler",
    "poller",
    "registry",
    "run_job",
]
