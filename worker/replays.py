"""Run one replay or probe: claim its row, play the job's policy with rlcore, store the files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import traceback
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, update

from app.db import session_scope
from app.models import Job, Replay, ReplayStatus, utcnow
from app.replays import policy_folder, replay_files
from app.settings import Settings
from worker.runner import short_error

log = logging.getLogger(__name__)


def execute_replay(settings: Settings, replay_id: str) -> str:
    """Run the replay `replay_id` if it is still to run; returns what happened, for the log."""
    stale_before = utcnow() - timedelta(seconds=settings.heartbeat_timeout)
    with session_scope(settings.database_url) as session:
        # Claim: queued -> running, or running but silent (the task was redelivered after
        # its worker died). A recording whose worker still beats is left alone. The files
        # are written whole or not at all, so a second run of the same replay is harmless.
        claimed = session.execute(
            update(Replay)
            .where(
                Replay.id == replay_id,
                or_(
                    Replay.status == ReplayStatus.queued,
                    (Replay.status == ReplayStatus.running) & (Replay.heartbeat_at < stale_before),
                ),
            )
            .values(status=ReplayStatus.running, heartbeat_at=utcnow())
        ).rowcount
        replay = session.get(Replay, replay_id) if claimed else None
        job = session.get(Job, replay.job_id) if replay else None
        if replay is None or job is None:
            return "skipped"
        session.expunge_all()
    try:
        with _beating(settings, replay_id):
            _record(settings, replay, job)
    except Exception as error:
        log.error("replay %s failed:\n%s", replay_id, traceback.format_exc())
        return _finish(settings, replay_id, ReplayStatus.failed, short_error(error))
    return _finish(settings, replay_id, ReplayStatus.ready, None)


@contextlib.contextmanager
def _beating(settings: Settings, replay_id: str) -> Iterator[None]:
    """Write the replay's heartbeat every `heartbeat_interval` while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.heartbeat_interval):
            try:
                with session_scope(settings.database_url) as session:
                    session.execute(
                        update(Replay)
                        .where(Replay.id == replay_id, Replay.status == ReplayStatus.running)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # a database blip: the next beat tries again
                log.warning("replay %s: heartbeat failed", replay_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"replay-heartbeat-{replay_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _record(settings: Settings, replay: Replay, job: Job) -> None:
    from app.checkpoint_policy import export_from_checkpoint
    from rlcore.probe import probe_export
    from rlcore.replay import replay_export

    params: dict[str, Any] = replay.params
    if params["policy"] == "checkpoint":
        exported = export_from_checkpoint(settings.job_dir(job.id))
        if exported is None:
            raise ValueError(f"job {job.id} has no checkpoint")
        folder = exported[0]
    else:
        found = policy_folder(settings, job, params["policy"])
        if found is None:
            raise ValueError(f"job {job.id} has no {params['policy']} policy")
        folder = found
    data_path, video_path = replay_files(settings, replay)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    common = {
        "seed": params["seed"],
        "deterministic": params["deterministic"],
        "max_steps": params["max_steps"],
    }
    if replay.kind == "probe":
        report = probe_export(folder, episodes=params["episodes"], **common)
        _write(data_path, json.dumps(report.to_json()).encode())
        return
    recorded, video = replay_export(folder, **common)
    _write(video_path, video)
    _write(data_path, json.dumps(recorded.to_json()).encode())  # last: its presence means ready


def _write(path: Path, content: bytes) -> None:
    """Write whole or not at all: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def _finish(settings: Settings, replay_id: str, outcome: ReplayStatus, error: str | None) -> str:
    with session_scope(settings.database_url) as session:
        replay = session.get(Replay, replay_id)
        if replay is None:  # its job was deleted meanwhile
            return "gone"
        replay.status, replay.error, replay.finished_at = outcome, error, utcnow()
    return outcome.value
