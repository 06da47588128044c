"""GET /api/reviews: what waits in review (tandem.domain.review_queue), for the token's team's tasks.

`status=waiting` (the default): votes waiting for reviewers; `status=returned`: votes returned to
their raters. Needs the `read` scope.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from app.api import requires
from tandem.domain.review_queue import review_queue
from tandem.infra.tokens import Client, Scope

router = APIRouter(prefix="/api")


@router.get("/reviews")
def reviews(
    request: Request, client: Client = requires(Scope.READ), status: Literal["waiting", "returned"] = "waiting"
) -> dict:
    with request.app.state.services.storage.transaction() as session:
        return {"status": status, "reviews": review_queue(session, status, team=client.team)}
