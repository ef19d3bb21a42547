"""The Celery application, configured from `app.settings.Settings`.

`celery -A worker.celery_app worker` (or `rlserve worker`) uses the module-level `app`
built from the environment; the API builds its own instance from its settings to send
tasks. Design choices against known Celery traps:

- JSON only: no pickle from anyone who can reach the broker.
- `acks_late` + `reject_on_worker_lost` + prefetch 1: a task whose worker dies is not
  lost, and a worker holds no job it has not started.
- The `threads` pool with one job per process: nothing forks after the parent imported
  torch (celery#3402), and SIGTERM/Ctrl-C's warm shutdown reaches the running job, which
  checkpoints and is re-queued (worker/shutdown.py).
- Redis `visibility_timeout` far above any job (celery#5935): a long job is never
  delivered twice because it ran long; dead workers are found by heartbeats instead
  (worker/reaper.py), and a duplicate delivery is harmless anyway because a task must
  claim its job row before running it (worker/lifecycle.py).
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from app.lifecycle import TASK_NAME  # noqa: F401  (re-exported for the worker)
from app.settings import Settings


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
    return {"visibility_timeout": settings.visibility_timeout}


def create_celery(settings: Settings, include: list[str] | None = None) -> Celery:
    """A Celery app for `settings`: broker, queues and the safety settings above.

    `include` names task modules to import at worker start (the worker passes worker.tasks).
    """
    celery = Celery("rlserve", broker=settings.broker_url, set_as_current=False, include=include or [])
    cpu, gpu = settings.queue_name("cpu"), settings.queue_name("gpu")
    celery.conf.update(
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        # One job per worker process, in a thread: no fork before CUDA (celery#3402), and a
        # warm shutdown stops the job gracefully (worker/shutdown.py).
        worker_pool="threads",
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (cpu, gpu)],
        task_default_queue=cpu,
        task_queue_max_priority=9,
        task_default_priority=0,
        # The filesystem transport has no fanout worth using; the database is the control plane.
        worker_enable_remote_control=not settings.is_embedded_broker,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    celery.conf.rlserve_settings = settings
    return celery


def __getattr__(name: str) -> Celery:
    # Built on first use, so importing this module (the API does, for create_celery)
    # neither reads the environment nor creates the embedded broker's folders.
    if name in ("app", "celery"):
        global _app
        if _app is None:
            _app = create_celery(Settings.from_env(), include=["worker.tasks"])
        return _app
    raise AttributeError(name)


_app: Celery | None = None
