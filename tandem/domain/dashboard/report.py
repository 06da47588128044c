"""Figures the dashboard computes from the judgments, kept in Redis: the statistics report of the
leaderboard and raters pages, and the overview's judgments per day and waits.

Fitting the ranking with its bootstrap over a hundred thousand judgments takes seconds (and
reading them all, a few hundred milliseconds), and the pages are opened far more often than
judgments change. So the figures are kept under a key made of what they are and the data's
freshness (``_freshness``). Any new vote, changed mind, score, review or deleted comment changes
the key, and the next page view computes them afresh; otherwise they are read back in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.domain.statistics.queries import Filters
from tandem.domain.statistics.report import statistics
from tandem.infra import redis_keys
from tandem.infra.models import CommandVersion, DeletedComment, Judgment, JudgmentReview, Rating
from tandem.infra.services import Services

BOOTSTRAP = 200  # enough for the plot's intervals; `tandem stats` takes more for a paper
KEPT_SECONDS = 24 * 3600


def _freshness(session: Session) -> list:
    """What changes whenever the statistics may: every vote, score and /undo is a new command
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


def kept(services: Services, session: Session, what: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-ready), read back from Redis while the data it depends on is as it was:
    ``what`` names the figures and everything they are computed with."""
    described = repr((what, _freshness(session)))
    key = redis_keys.dashboard_kept(described)
    found = services.redis.get(key)
    if found is not None:
        return orjson.loads(found)
    result = compute()
    services.redis.set(key, orjson.dumps(result), ex=KEPT_SECONDS)
    return result


def report(services: Services, filters: Filters, *, scope_name: str) -> dict:
    """The statistics report on ``filters`` (whose ``tasks`` conditions are named by
    ``scope_name``, e.g. the team)."""
    what = repr(
        (
            "report",
            scope_name,
            filters.repo,
            filters.since,
            filters.until,
            filters.round,
            sorted(filters.metadata.items()),
            filters.models and sorted(filters.models),
            filters.include_unapproved,
            BOOTSTRAP,
        )
    )
    with services.storage.transaction() as session:
        return kept(services, session, what, lambda: statistics(session, filters, bootstrap=BOOTSTRAP, seed=0))
