"""Beat entries for generation, importable from settings.py (no Django imports here, unlike tasks.py).

    from models_serving.beat import BEAT_SCHEDULE as _GENERATION_BEAT_SCHEDULE
    CELERY_BEAT_SCHEDULE = {**_RATERS_BEAT_SCHEDULE, **_GENERATION_BEAT_SCHEDULE}

Optional: a worker that starts already looks for chunks a dead worker left behind. With beat, a stalled job is
also picked up while every worker keeps running (a message lost by the broker). `expires`: a tick still queued
when the next is due is dropped, so a backlog never piles up.
"""
RECOVER_INTERVAL_SECONDS = 60.0

BEAT_SCHEDULE = {
    "models-serving-recover-stalled-generation": {
        "task": "models_serving.tasks.generation_recover_task",
        "schedule": RECOVER_INTERVAL_SECONDS,
        "options": {"queue": "generation", "expires": RECOVER_INTERVAL_SECONDS - 5},
    },
}
