"""One run's scores from its stored points: final score, MMER and eval score (rlcore.stats).

A job's scores are stored on its row when it finishes (`record_status` calls
`store_scores`); an unfinished job's are computed from its points so far whenever a view
asks (`scores_for`), from the API's cached table of its points, and marked partial. Jobs
that finished before scores were stored get theirs computed from their points when asked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.metrics_series import SeriesTable, decode_rows, fetch_rows, job_table
from app.models import FINISHED, Job, JobStatus
from rlcore import stats

RETURN_KEY = "charts/episodic_return"
EPISODES_KEY = "charts/episodes"
EVAL_KEY = "eval/episodic_return"
SCORE_KEYS = [RETURN_KEY, EPISODES_KEY, EVAL_KEY]
FINAL_FRACTION = 0.1  # the final score is the mean return over the last 10% of training
# A point's return is the mean of the few episodes that ended in one update; a max over
# such small means is biased upwards, so MMER pools consecutive points to 10 episodes.
MMER_MIN_EPISODES = 10


@dataclass(frozen=True)
class RunScores:
    """A run's scores (None where it has none yet); `partial` while the run is unfinished."""

    final: float | None = None
    mmer: float | None = None
    eval: float | None = None
    partial: bool = False

    def get(self, metric: str) -> float | None:
        """The score named `metric`: final, mmer or eval."""
        return {"final": self.final, "mmer": self.mmer, "eval": self.eval}[metric]


def scores_of_table(table: SeriesTable, total_steps: int | None, partial: bool) -> RunScores:
    """Scores of a job's points. `total_steps`: the end of training (None: the last point's step)."""
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
    steps, returns = table.series.get(RETURN_KEY, empty)
    ep_steps, ep_counts = table.series.get(EPISODES_KEY, empty)
    # The episode count of each return's point (1 where a point has none, as older runs).
    episodes = np.ones(len(steps))
    if len(ep_steps):
        at = np.minimum(np.searchsorted(ep_steps, steps), len(ep_steps) - 1)
        matched = ep_steps[at] == steps
        episodes[matched] = ep_counts[at[matched]]
    eval_steps, eval_values = table.series.get(EVAL_KEY, empty)
    return RunScores(
        final=stats.final_score(steps, returns, episodes, fraction=FINAL_FRACTION, total_steps=total_steps),
        mmer=stats.mmer(steps, returns, episodes, min_episodes=MMER_MIN_EPISODES),
        eval=stats.eval_score(eval_steps, eval_values),
        partial=partial,
    )


def _window_end(job: Job) -> int | None:
    # A run stopped early (cancelled, failed) or still running ends where its points end.
    return job.total_steps if job.status == JobStatus.succeeded else None


def compute_scores(session: Session, job: Job, cached: bool = False) -> RunScores:
    """The job's scores from its stored points. `cached`: read them through the API's cache."""
    table = job_table(session, job) if cached else decode_rows(*fetch_rows(session, job.id), SCORE_KEYS)
    return scores_of_table(table, _window_end(job), partial=job.status not in FINISHED)


def store_scores(session: Session, job: Job) -> None:
    """Compute the scores of a job that has just finished and keep them on its row."""
    scores = compute_scores(session, job) if job.last_step else RunScores()
    job.final_score, job.mmer, job.eval_score = scores.final, scores.mmer, scores.eval


def stored_scores(job: Job) -> RunScores:
    """The scores kept on the row: a finished job's; an unfinished one has none (partial)."""
    if job.status not in FINISHED:
        return RunScores(partial=True)
    return RunScores(job.final_score, job.mmer, job.eval_score)


def _has_stored(job: Job) -> bool:
    # A finished row without any score either had no episode or finished before scores
    # were stored; only a job that never ran is sure to have none.
    return job.final_score is not None or job.mmer is not None or job.eval_score is not None


def scores_for(session: Session, jobs: Iterable[Job]) -> dict[str, RunScores]:
    """Each job's scores by id: stored where the job finished, computed from its points otherwise."""
    out: dict[str, RunScores] = {}
    for job in jobs:
        if job.status in FINISHED and (_has_stored(job) or not job.last_step):
            out[job.id] = stored_scores(job)
        elif not job.last_step:
            out[job.id] = RunScores(partial=True)  # queued, no point yet
        else:
            out[job.id] = _computed(session, job)
    return out


# Computed scores by job id, with the row's (status, last step, points written) they were
# computed at. A running job's row changes at each heartbeat (seconds), not at each point,
# so between beats every reader of it gets the same partial scores without a query.
_COMPUTED: OrderedDict[str, tuple[tuple[str, int | None, int], RunScores]] = OrderedDict()
_COMPUTED_MAX = 4096
_COMPUTED_LOCK = threading.Lock()


def _computed(session: Session, job: Job) -> RunScores:
    seen = (job.status, job.last_step, job.points_written)
    with _COMPUTED_LOCK:
        hit = _COMPUTED.get(job.id)
    if hit is not None and hit[0] == seen:
        return hit[1]
    scores = compute_scores(session, job, cached=True)
    with _COMPUTED_LOCK:
        _COMPUTED[job.id] = (seen, scores)
        _COMPUTED.move_to_end(job.id)
        while len(_COMPUTED) > _COMPUTED_MAX:
            _COMPUTED.popitem(last=False)
    return scores
