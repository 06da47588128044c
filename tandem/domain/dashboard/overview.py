"""What the dashboard's overview shows: tasks by status, judgments per day, how long pairs wait,
and the health of the queues. Each figure is one aggregate query (no rows per judgment in Python),
so the page stays fast with hundreds of thousands of judgments.

``scope`` is a tuple of conditions on Task (whose tasks a viewer may see), as in
tandem.domain.statistics.queries.Filters.tasks.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tandem.domain.statistics.queries import seconds_between
from tandem.infra import budget, dead_letters, liveness, queue
from tandem.infra.inbox import STREAM
from tandem.infra.models import DeadLetter, Installation, Judgment, Pair, Task
from tandem.infra.services import Services

Scope = tuple[ColumnElement[bool], ...]


def tasks_by_status(session: Session, scope: Scope) -> dict[str, int]:
    rows = session.execute(select(Task.status, func.count()).where(*scope).group_by(Task.status))
    return dict(sorted(rows.all()))


def judgments_per_day(session: Session, scope: Scope, *, days: int = 30) -> list[tuple[date, int]]:
    """Votes written on each of the last ``days`` days (every version: a changed mind is work
    too), zero for the days without any."""
    start = datetime.now(UTC).date() - timedelta(days=days - 1)
    day = func.date(Judgment.voted_at)
    rows = session.execute(
        select(day, func.count())
        .join(Task, Task.id == Judgment.task_id)
        .where(Judgment.voted_at >= datetime.combine(start, datetime.min.time(), UTC), *scope)
        .group_by(day)
    )
    counts = {(d if isinstance(d, date) else date.fromisoformat(d)): n for d, n in rows}
    return [(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)]


@dataclass(frozen=True)
class Waits:
    """Medians in seconds over the pairs that have them (None when none has)."""

    open_to_first_vote: float | None
    last_vote_to_close: float | None


def median_waits(session: Session, scope: Scope) -> Waits:
    """From a pair opening to its first vote, and from its last vote to its closing (which comes
    when its judgments are approved): one pass over the judgments, medians by PostgreSQL (which
    skips the pairs without a time), in Python on SQLite (which has no percentiles)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    votes = (
        select(Judgment.pair_id, func.min(Judgment.voted_at).label("first"), func.max(Judgment.voted_at).label("last"))
        .join(Task, Task.id == Judgment.task_id)
        .where(*scope)
        .group_by(Judgment.pair_id)
        .subquery()
    )
    first = seconds_between(Pair.opened_at, votes.c.first, postgres)
    last = seconds_between(votes.c["last"], Pair.closed_at, postgres)
    base = select().select_from(votes).join(Pair, Pair.id == votes.c.pair_id)
    if postgres:
        medians = session.execute(
            base.add_columns(
                func.percentile_cont(0.5).within_group(first), func.percentile_cont(0.5).within_group(last)
            )
        ).one()
        return Waits(*(None if value is None else float(value) for value in medians))
    rows = session.execute(base.add_columns(first, last)).all()
    return Waits(_median([row[0] for row in rows]), _median([row[1] for row in rows]))


def _median(values: list) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def judgment_figures(session: Session, scope: Scope) -> dict:
    """Judgments per day and the waits, JSON-ready: each takes a pass over every judgment of the
    scope, so tandem.domain.dashboard.report keeps them."""
    return {
        "days": [(day.isoformat(), n) for day, n in judgments_per_day(session, scope)],
        "waits": dataclasses.asdict(median_waits(session, scope)),
    }


def read_figures(figures: dict) -> tuple[list[tuple[date, int]], Waits]:
    """``judgment_figures``' days and waits, as they were before JSON."""
    return [(date.fromisoformat(day), n) for day, n in figures["days"]], Waits(**figures["waits"])


@dataclass(frozen=True)
class QueueHealth:
    inbox_waiting: int
    inbox_lag_seconds: float | None  # age of the oldest delivery not yet relayed into a job
    queues: list[dict]  # name, queued, failed (with the failed jobs' ids)
    dead_letters: list[DeadLetter]
    workers: list[liveness.WorkerBeat]
    installations: list[tuple[str, budget.Usage]]  # account, its write budget's use


def queue_health(services: Services, *, failed_shown: int = 20) -> QueueHealth:
    connection = services.redis
    oldest = connection.xrange(STREAM, count=1)
    lag = None
    if oldest:
        entry_id = oldest[0][0]  # bytes, as this connection does not decode; redis-py's type admits str
        milliseconds = int((entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)).split("-")[0])
        lag = max(0.0, time.time() - milliseconds / 1000)
    queues = []
    for name in queue.ALL:
        rq_queue = services.queue(name)
        registry = rq_queue.failed_job_registry
        queues.append(
            {
                "name": name,
                "queued": rq_queue.count,
                "failed": registry.count,
                "failed_jobs": registry.get_job_ids(0, failed_shown - 1),
            }
        )
    with services.storage.transaction() as session:
        live = session.execute(
            select(Installation.id, Installation.account_login)
            .where(Installation.deleted_at.is_(None))
            .order_by(Installation.account_login)
        ).all()
    minute, hour = services.github.budget_windows
    return QueueHealth(
        installations=[(login, budget.usage(connection, id_, minute=minute, hour=hour)) for id_, login in live],
        inbox_waiting=connection.xlen(STREAM),
        inbox_lag_seconds=lag,
        queues=queues,
        dead_letters=dead_letters.listing(services),
        workers=liveness.worker_beats(connection),
    )


def requeue_failed_job(services: Services, queue_name: str, job_id: str) -> bool:
    """Put a job of a queue's failed registry back on its queue; False if it is not there."""
    if queue_name not in queue.ALL:
        return False
    registry = services.queue(queue_name).failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    registry.requeue(job_id)
    return True
