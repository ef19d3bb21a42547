"""A graceful stop for the job in this process when the worker is asked to shut down.

The pool child gets SIGTERM when the worker stops (`rlserve up` on Ctrl-C, docker stop):
the running job then checkpoints at its next update and is put back in the queue, so it
resumes where it was instead of holding the shutdown until the job ends.
"""

from __future__ import annotations

import signal
import threading

SHUTDOWN = threading.Event()


def install_sigterm_handler() -> None:
    def _handler(_signum: int, _frame: object) -> None:
        SHUTDOWN.set()

    signal.signal(signal.SIGTERM, _handler)
