"""The raters: judgments, agreement, gold accuracy, position bias and time on task with the
statistics' flags, and a page per rater. A rater who signs in sees their own page only."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from app.dashboard import access
from app.dashboard.access import Role, Viewer
from app.dashboard.leaderboard import FilterForm, filters_from
from app.dashboard.render import page
from tandem.dashboard import report, tasks

router = APIRouter()


@router.get("/raters")
def raters(request: Request, viewer: Annotated[Viewer, Depends(access.team_viewer)], values: FilterForm):
    stats = report.report(request.app.state.services, filters_from(viewer, values), scope_name=f"team:{viewer.team}")
    return page(request, "raters.html", viewer, title="Raters", raters=stats["raters"],
                reviewers=stats["reviewers"], values=values)


@router.get("/raters/{login}")
def rater(request: Request, login: str, viewer: Annotated[Viewer, Depends(access.viewer)], values: FilterForm):
    if viewer.role is Role.RATER and viewer.login.lower() != login.lower():
        raise HTTPException(403, "raters see their own statistics only")
    services = request.app.state.services
    # A rater's own figures are over every task they judged (agreement needs the other raters
    # of those pairs); a team sees its tasks only.
    own = viewer.role is Role.RATER
    filters = filters_from(viewer, values)
    if own:
        filters = dataclasses.replace(filters, tasks=())
    stats = report.report(services, filters, scope_name="all" if own else f"team:{viewer.team}")
    entry = next((r for r in stats["raters"] if r["rater"].lower() == login.lower()), None)
    with services.storage.transaction() as session:
        votes = tasks.rater_votes(session, login, () if own else viewer.scope)
    return page(request, "rater.html", viewer, title=f"Rater {login}", login=login, entry=entry, votes=votes,
                values=values)
