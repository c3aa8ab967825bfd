"""Periodic upkeep of the rating and audit engines.

Claims return lapsed leases to the pool when they find it empty; this task catches up the rest, so a
comparison (or a response to audit) an absent rater held does not wait for the pool to run dry.

This module is imported by settings (for BEAT_SCHEDULE) before Django's apps are ready, so it must not
import models at the top: the service is imported inside the task.
"""
from __future__ import annotations

from celery import shared_task

RECLAIM_INTERVAL_SECONDS = 60.0
RECLAIM_BATCH = 1000
RECLAIM_MAX_BATCHES = 100

# Beat entries for settings.CELERY_BEAT_SCHEDULE. `expires`: a tick still queued when the next one is due
# (workers were down) is dropped rather than run late, so a backlog never piles up.
BEAT_SCHEDULE = {
    "raters-reclaim-expired-leases": {
        "task": "raters.tasks.reclaim_expired_leases_task",
        "schedule": RECLAIM_INTERVAL_SECONDS,
        "options": {"expires": RECLAIM_INTERVAL_SECONDS - 5},
    },
}


# Time limits below the interval, so one run ends before the next starts. The task is idempotent (a lease
# is expired once; a second run finds nothing), so a redelivery after a lost worker is harmless.
@shared_task(name="raters.tasks.reclaim_expired_leases_task", acks_late=True,
             soft_time_limit=RECLAIM_INTERVAL_SECONDS - 15, time_limit=RECLAIM_INTERVAL_SECONDS - 10)
def reclaim_expired_leases_task() -> int:
    """Return every lapsed lease, raters' and experts', to its pool; how many were returned."""
    from raters.audits.services import reclaim_expired_audit_leases
    from raters.services import reclaim_expired_leases

    return _drain(reclaim_expired_leases) + _drain(reclaim_expired_audit_leases)


def _drain(reclaim) -> int:
    """Call `reclaim` in batches of one transaction each until a batch comes back short."""
    total = 0
    for _ in range(RECLAIM_MAX_BATCHES):
        returned = reclaim(limit=RECLAIM_BATCH)
        total += returned
        if returned < RECLAIM_BATCH:
            break
    return total
