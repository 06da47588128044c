"""The raters: judgments, agreement, gold accuracy, position bias and time on task with the
statistics' flags, and a page per rater. A rater who signs in sees their own page only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from app.dashboard import access
from app.dashboard.access import Role, Viewer
from app.dashboard.leaderboard import FilterForm, filters_from, form_values
from app.dashboard.render import page
from tandem.domain.dashboard import report, tasks
from tandem.infra.models import Judgment

router = APIRouter()


@router.get("/raters")
def raters(request: Request, viewer: Annotated[Viewer, Depends(access.team_viewer)], values: FilterForm):
    kept = report.kept(request.app.state.services, report.Figures.report(filters_from(values), viewer.team))
    stats = kept.figures or {}
    return page(
        request,
        "raters.html",
        viewer,
        title="Raters",
        kept=kept,
        raters=stats.get("raters"),
        reviewers=stats.get("reviewers"),
        values=values,
    )


@router.get("/raters/{login}")
def rater(request: Request, login: str, viewer: Annotated[Viewer, Depends(access.viewer)], values: FilterForm):
    if viewer.role is Role.RATER and viewer.login.lower() != login.lower():
        raise HTTPException(403, "raters see their own statistics only")
    services = request.app.state.services
    # A rater's own figures are over every task they judged (agreement needs the other raters
    # of those pairs); a team sees its tasks only.
    own = viewer.role is Role.RATER
    if own:
        # Fixed filters (approved votes, all time): filters of their choosing would let a rater
        # narrow to one task and read its gold answer or the others' votes from their figures,
        # and make every new combination a fresh fit over all teams.
        values = form_values()
    kept = report.kept(services, report.Figures.report(filters_from(values), None if own else viewer.team))
    with services.storage.transaction() as session:
        # A rater's own page finds them by GitHub id: their login may have belonged to someone else.
        if own:
            votes = tasks.rater_votes(session, Judgment.rater_id == viewer.user_id, ())
            name = tasks.rater_name(session, viewer.user_id) or ""
        else:
            votes, name = tasks.rater_votes(session, Judgment.rater_login == login, viewer.scope), login
    entry = next((r for r in (kept.figures or {}).get("raters", ()) if r["rater"].lower() == name.lower()), None)
    return page(
        request,
        "rater.html",
        viewer,
        title=f"Rater {login}",
        kept=kept,
        login=login,
        entry=entry,
        votes=votes,
        values=values,
    )
