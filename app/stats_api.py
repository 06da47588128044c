"""GET /api/stats: the `tandem stats` report as JSON, with the same filters as query parameters.

It needs an API token with the `read` scope, and reports on the token's team's tasks only. The
report is computed in the thread pool (a plain `def` route), off the event loop.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from app.api import requires
from tandem.domain.statistics.queries import Filters
from tandem.domain.statistics.report import statistics
from tandem.infra.errors import TandemError
from tandem.infra.models import Task
from tandem.infra.tokens import Client, Scope

router = APIRouter(prefix="/api")

MAX_BOOTSTRAP = 10_000


@router.get("/stats")
def stats(
    request: Request,
    client: Client = requires(Scope.READ),
    *,
    repo: str | None = None,
    since: str | None = None,
    until: str | None = None,
    round: int | None = None,
    metadata: Annotated[list[str], Query(default_factory=list, description="KEY=VALUE; repeat for several")],
    model: Annotated[list[str], Query(default_factory=list, description="only pairs of two of these models; repeat")],
    include_unapproved: bool = False,
    bootstrap: Annotated[int, Query(ge=0, le=MAX_BOOTSTRAP)] = 1000,
    seed: int = 0,
    pairs: bool = False,
) -> dict:
    """Rankings with confidence intervals, position bias, agreement, raters and reviewers."""
    try:
        filters = Filters.parse(
            repo=repo,
            since=since,
            until=until,
            round=round,
            metadata=metadata,
            models=model,
            include_unapproved=include_unapproved,
        )
    except TandemError as exc:
        raise HTTPException(400, str(exc)) from None
    filters = dataclasses.replace(filters, tasks=(Task.team == client.team,))
    with request.app.state.services.storage.transaction() as session:
        return statistics(session, filters, bootstrap=bootstrap, seed=seed, per_pair=pairs)
