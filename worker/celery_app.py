"""The worker's Celery application: `app.queue.celery_client` plus the settings of a consumer.

`celery -A worker.celery_app worker` (which `rlserve worker` and `rlserve up` run) uses the
module-level `app`, built from the environment, whose task module `worker.tasks` defines
`app.queue.TASK_NAME`. The API sends to the same queues with the client alone and never
imports this package. Design choices against known Celery traps:

- JSON only: no pickle from anyone who can reach the broker (app/queue.py).
- `acks_late` + `reject_on_worker_lost` + prefetch 1: a task whose worker dies is not
  lost, and a worker holds no job it has not started.
- The `threads` pool with one job per process: nothing forks after the parent imported
  torch (celery#3402), and SIGTERM/Ctrl-C's warm shutdown reaches the running job, which
  checkpoints and is re-queued (worker/shutdown.py).
- Redis `visibility_timeout` far above any job (celery#5935): a long job is never
  delivered twice because it ran long; dead workers are found by heartbeats instead
  (app/reaper.py), and a duplicate delivery is harmless anyway because a task must
  claim its job row before running it (worker/attempt.py).
"""

from __future__ import annotations

from celery import Celery

from app.queue import celery_client
from app.settings import Settings
from rlcore.envs.plugins import load_plugins


def create_celery(settings: Settings) -> Celery:
    """The consuming Celery app for `settings`: the client's broker and queues, plus the settings above.

    Loads the operator's env plugins too: a job's spec may name one.
    """
    load_plugins()
    celery = celery_client(settings, include=["worker.tasks"])
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        # One job per worker process, in a thread: no fork before CUDA (celery#3402), and a
        # warm shutdown stops the job gracefully (worker/shutdown.py).
        worker_pool="threads",
        # The filesystem transport has no fanout worth using; the database is the control plane.
        worker_enable_remote_control=not settings.is_embedded_broker,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    return celery


app = create_celery(Settings.from_env())
