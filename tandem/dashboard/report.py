"""The statistics report for the dashboard's leaderboard and raters pages, kept in Redis.

Fitting the ranking with its bootstrap over a hundred thousand judgments takes seconds, and the
pages are opened far more often than judgments change. So a report is kept under a key made of
its filters and the data's freshness: the newest judgment, score and review ids and the latest
supersession or withdrawal. Any new vote, changed mind, score or review changes the key, and the
next page view computes the report afresh; otherwise it is read back in milliseconds.
"""

from __future__ import annotations

import hashlib

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.models import Judgment, JudgmentReview, Rating
from tandem.services import Services
from tandem.statistics.queries import Filters
from tandem.statistics.report import statistics

BOOTSTRAP = 200  # enough for the plot's intervals; `tandem stats` takes more for a paper
KEPT_SECONDS = 24 * 3600


def _freshness(session: Session) -> list:
    return list(
        session.execute(
            select(
                select(func.max(Judgment.id)).scalar_subquery(),
                select(func.max(Judgment.superseded_at)).scalar_subquery(),
                select(func.max(Rating.id)).scalar_subquery(),
                select(func.max(Rating.superseded_at)).scalar_subquery(),
                select(func.max(JudgmentReview.id)).scalar_subquery(),
                select(func.max(JudgmentReview.withdrawn_at)).scalar_subquery(),
            )
        ).one()
    )


def report(services: Services, filters: Filters, *, scope_name: str) -> dict:
    """The statistics report on ``filters`` (whose ``tasks`` conditions are named by
    ``scope_name`` in the key, e.g. the team)."""
    with services.storage.transaction() as session:
        fresh = _freshness(session)
        described = repr((scope_name, filters.repo, filters.since, filters.until, filters.round,
                          sorted(filters.metadata.items()), filters.models and sorted(filters.models),
                          filters.include_unapproved, BOOTSTRAP, fresh))
        key = "tandem:dashboard:report:" + hashlib.sha256(described.encode()).hexdigest()
        kept = services.redis.get(key)
        if kept is not None:
            return orjson.loads(kept)
        result = statistics(session, filters, bootstrap=BOOTSTRAP, seed=0)
    services.redis.set(key, orjson.dumps(result), ex=KEPT_SECONDS)
    return result
