"""Figures the dashboard computes from the judgments, kept in Redis: the statistics report of the
leaderboard and raters pages, and the overview's judgments per day and waits.

Fitting the ranking with its bootstrap over a hundred thousand judgments takes seconds, and the
pages are opened far more often than judgments change. So a page never computes them: a job of
the dashboard queue does (workers.dashboard), and keeps them under a key made of what they are
and the data's freshness (``_freshness``), and under a key of what they are alone (the latest).
A page reads the figures of the data's current freshness; when a new vote, changed mind, score,
review or deleted comment has changed it, the page shows the latest figures, saying as of when,
and queues the job that computes them afresh (one per figures and freshness, however many views
ask). Figures never computed show as being computed, and the page refreshes itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tandem.domain.dashboard import overview
from tandem.domain.statistics.queries import Filters
from tandem.domain.statistics.report import statistics
from tandem.infra import job_names, queue, redis_keys
from tandem.infra.models import CommandVersion, DeletedComment, Judgment, JudgmentReview, Rating, Task
from tandem.infra.services import Services

BOOTSTRAP = 200  # enough for the plot's intervals; `tandem stats` takes more for a paper
KEPT_SECONDS = 24 * 3600
LATEST_SECONDS = 14 * 24 * 3600
# One job per figures and freshness for this long: longer than a computation over a million
# judgments, short enough that figures whose job was lost are queued again by a later view.
COMPUTING_SECONDS = 15 * 60
REPORT, OVERVIEW = "report", "overview"


@dataclass(frozen=True)
class Figures:
    """Which figures, in the plain values a job carries: the statistics ``REPORT`` on ``filters``
    (Filters.parse's arguments), or the ``OVERVIEW``'s judgments per day and waits; over the tasks
    of ``team``, or of every team for None."""

    kind: str
    team: str | None
    filters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def report(cls, filters: Filters, team: str | None) -> Figures:
        """The report on ``filters`` (their ``tasks`` conditions are not carried: ``team`` is)."""
        plain = {
            "repo": filters.repo,
            "since": filters.since and filters.since.isoformat(),
            "until": filters.until and filters.until.isoformat(),
            "round": filters.round,
            "metadata": [f"{key}={value}" for key, value in sorted(filters.metadata.items())],
            "models": sorted(filters.models or ()),
            "include_unapproved": filters.include_unapproved,
        }
        return cls(REPORT, team, plain)

    @classmethod
    def overview(cls, team: str | None) -> Figures:
        return cls(OVERVIEW, team)

    @property
    def what(self) -> str:
        return repr((self.kind, self.team, sorted(self.filters.items()), BOOTSTRAP if self.kind == REPORT else None))

    def _scope(self) -> tuple[ColumnElement[bool], ...]:
        return () if self.team is None else (Task.team == self.team,)

    def compute(self, session: Session) -> Any:
        """The figures (JSON-ready), computed now: seconds over a hundred thousand judgments."""
        if self.kind == OVERVIEW:
            return overview.judgment_figures(session, self._scope())
        filters = Filters.parse(**self.filters)
        return statistics(session, replace(filters, tasks=self._scope()), bootstrap=BOOTSTRAP, seed=0)

    def described(self, session: Session) -> str:
        """What the figures are and the freshness of the data they are computed on (the overview's
        30 days end today, so today counts too)."""
        today = datetime.now(UTC).date().isoformat() if self.kind == OVERVIEW else None
        return repr((self.what, _freshness(session), today))


@dataclass(frozen=True)
class Kept:
    figures: Any | None  # None: never computed yet (a queued job is computing them)
    as_of: datetime | None  # when the data they were computed on was read
    refreshing: bool  # not computed on the data as it is now: a queued job is computing that


def _freshness(session: Session) -> list:
    """What changes whenever the figures may: every vote, score and /undo is a new command
    version (tandem.domain.history), every review a new review, every deleted comment (withdrawing a
    vote or a review) a new row. Newest ids and a count: index lookups, however many judgments."""
    return list(
        session.execute(
            select(
                select(func.max(Judgment.id)).scalar_subquery(),
                select(func.max(CommandVersion.id)).scalar_subquery(),
                select(func.max(Rating.id)).scalar_subquery(),
                select(func.max(JudgmentReview.id)).scalar_subquery(),
                select(func.count()).select_from(DeletedComment).scalar_subquery(),
            )
        ).one()
    )


def _read(stored: bytes | str, *, refreshing: bool) -> Kept:
    data = orjson.loads(stored)
    return Kept(data["figures"], datetime.fromisoformat(data["as_of"]), refreshing)


def kept(services: Services, figures: Figures) -> Kept:
    """The figures of the data as it is now if they were computed; otherwise the latest ones (or
    none), with their computation queued."""
    with services.storage.transaction() as session:
        described = figures.described(session)
    found = services.redis.get(redis_keys.dashboard_kept(described))
    if found is not None:
        return _read(found, refreshing=False)
    queue_computing(services, figures, described)
    latest = services.redis.get(redis_keys.dashboard_latest(figures.what))
    return Kept(None, None, True) if latest is None else _read(latest, refreshing=True)


def queue_computing(services: Services, figures: Figures, described: str) -> bool:
    """Queue the job that computes ``figures``, unless one is queued for the same freshness
    (``described``) already: concurrent views queue one. True if this call queued it."""
    if not services.redis.set(redis_keys.dashboard_computing(described), 1, nx=True, ex=COMPUTING_SECONDS):
        return False
    services.enqueue(
        queue.DASHBOARD,
        job_names.COMPUTE_DASHBOARD_FIGURES,
        kwargs=job_names.payload(
            job_names.COMPUTE_DASHBOARD_FIGURES, kind=figures.kind, team=figures.team, filters=figures.filters
        ),
        job_id="dashboard-figures-" + hashlib.sha256(described.encode()).hexdigest()[:32],
        job_timeout=COMPUTING_SECONDS,
    )
    return True


def compute(services: Services, figures: Figures) -> bool:
    """Compute ``figures`` on the data as it is now and keep them, as those of its freshness and
    as the latest; False if they were kept already for this freshness (nothing computed)."""
    with services.storage.transaction() as session:
        described = figures.described(session)
        if services.redis.exists(redis_keys.dashboard_kept(described)):
            return False
        as_of = datetime.now(UTC)
        result = figures.compute(session)
    stored = orjson.dumps({"as_of": as_of.isoformat(), "figures": result})
    with services.redis.pipeline() as pipe:
        pipe.set(redis_keys.dashboard_kept(described), stored, ex=KEPT_SECONDS)
        pipe.set(redis_keys.dashboard_latest(figures.what), stored, ex=LATEST_SECONDS)
        pipe.execute()
    return True
