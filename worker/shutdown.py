"""A graceful stop for the jobs of a worker that is asked to shut down.

The worker runs its job in a thread of its own process (`--pool threads`, one job per
process), so Celery's own handlers for SIGTERM and SIGINT (warm shutdown: `rlserve up`
on Ctrl-C, `docker stop`) run in the same process as the job. Its `worker_shutting_down`
signal sets `SHUTDOWN`; the job's stop callback reads it, the trainer checkpoints at the
end of its current update, and the job goes back to the queue to resume on the next
worker, while the warm shutdown waits for the job's thread to return.
"""

from __future__ import annotations

import threading

from celery.signals import worker_shutting_down

SHUTDOWN = threading.Event()


@worker_shutting_down.connect
def _on_worker_shutting_down(**_: object) -> None:
    SHUTDOWN.set()
