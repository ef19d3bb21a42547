"""The job queue as the API sees it: a producer-only Celery client that sends tasks by name.

The API never imports the worker: it sends `TASK_NAME` with the job id to a queue, and
`worker/celery_app.py` defines the task under that name on a Celery app configured by
`celery_client` plus the worker-only settings (acks_late, prefetch 1, the threads pool).
Both sides declare the queues here, so a message routes the same whoever sends it.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from app.settings import Settings

TASK_NAME = "rlserve.run_job"
REPLAY_TASK_NAME = "rlserve.run_replay"


def broker_options(settings: Settings) -> dict[str, object]:
    """Transport options for the configured broker."""
    if settings.is_embedded_broker:
        folder = settings.broker_dir / "messages"
        control = settings.broker_dir / "control"
        for path in (folder, control):
            path.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(control),
            "store_processed": False,
            "polling_interval": 0.25,
        }
    # Redis redelivers an unacked task after this long (celery#5935): far above any job.
    return {"visibility_timeout": settings.visibility_timeout}


def celery_client(settings: Settings, include: list[str] | None = None) -> Celery:
    """A Celery app for `settings` that can send tasks: broker, queues, JSON only.

    The API uses it as is; the worker passes `include` (its task modules) and adds its own settings.
    """
    celery = Celery("rlserve", broker=settings.broker_url, set_as_current=False, include=include or [])
    cpu, gpu = settings.queue_name("cpu"), settings.queue_name("gpu")
    celery.conf.update(
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        # JSON only: no pickle from anyone who can reach the broker.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (cpu, gpu)],
        task_default_queue=cpu,
        task_queue_max_priority=9,
        task_default_priority=0,
    )
    celery.conf.rlserve_settings = settings
    return celery


def queue_for_device(settings: Settings, device: str) -> str:
    """Queue kind a job goes to: `cuda` needs a GPU worker; `auto` follows RLSERVE_AUTO_QUEUE."""
    if device == "cuda":
        return "gpu"
    if device == "cpu":
        return "cpu"
    return settings.auto_queue


def enqueue(celery: Celery, settings: Settings, job_id: str, queue: str, user_id: int) -> None:
    """Send the job's task to its queue. The ids travel, the worker reads the rest from the database.

    Every task goes at the same broker priority, so the shared queue is first come, first
    served between users; the task is a ticket for one of its user's queued jobs, and a
    job's `priority` only orders its owner's jobs (worker/attempt.py).
    """
    celery.send_task(
        TASK_NAME,
        args=[job_id],
        kwargs={"user_id": user_id, "queue": queue},
        queue=settings.queue_name(queue),
        ignore_result=True,
    )


def enqueue_replay(celery: Celery, settings: Settings, replay_id: str, queue: str) -> None:
    """Send a replay's (or probe's) task to the queue its job trains on; the worker reads the rest."""
    celery.send_task(REPLAY_TASK_NAME, args=[replay_id], queue=settings.queue_name(queue), ignore_result=True)
