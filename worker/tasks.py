"""Celery tasks: run a job, or a replay of a job's policy, by id; the rest is in the database."""

from __future__ import annotations

import os
import sys

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready

from app.db import forget_engines, upgrade
from app.queue import REPLAY_TASK_NAME, TASK_NAME
from app.reaper import reap_once
from app.settings import Settings
from worker import shutdown  # noqa: F401  (connects the graceful-stop signal handler)
from worker.replays import execute_replay
from worker.runner import execute_job


def _settings(task: object) -> Settings:
    configured = getattr(getattr(task, "app", None), "conf", {}).get("rlserve_settings")
    return configured if isinstance(configured, Settings) else Settings.from_env()


@shared_task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self: object, job_id: str, user_id: int | None = None, queue: str | None = None) -> str:
    """Train the job this task is a ticket for: `job_id`, or its user's first queued job."""
    return execute_job(_settings(self), job_id, getattr(self, "app", None), user_id, queue)


@shared_task(name=REPLAY_TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_replay(self: object, replay_id: str) -> str:
    """Play an episode of (or probe) a job's policy and store what it recorded."""
    return execute_replay(_settings(self), replay_id)


@worker_init.connect
def _on_worker_init(sender: object = None, **_: object) -> None:
    # Migrations at start; then one reaper pass, so a job whose worker was killed is
    # re-queued as soon as a worker comes back, not only when the API's reaper runs.
    settings = (
        getattr(getattr(sender, "app", None), "conf", {}).get("rlserve_settings") or Settings.from_env()
    )
    upgrade(settings.database_url)
    reap_once(settings, getattr(sender, "app", None))
    forget_engines()  # a forking pool (if one is chosen) must not share these connections


@worker_process_init.connect
def _on_process_init(**_: object) -> None:
    forget_engines()


@worker_ready.connect
def _say_where_jobs_run(**_: object) -> None:
    # One line an operator (and `rlserve worker --gpus`'s test) can read: which GPU, if any.
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    print(f"rlserve worker: GPU {gpu} (CUDA_VISIBLE_DEVICES={visible})", file=sys.stderr, flush=True)
