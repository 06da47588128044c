"""The overview: tasks by status, judgments per day, waits, and queue health with retry buttons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from app.dashboard import access, plots
from app.dashboard.access import Viewer
from app.dashboard.render import page
from tandem.domain.dashboard import overview, report
from tandem.infra.delivery_queue import replay
from tandem.infra.errors import TandemError

router = APIRouter()


@router.get("/")
def overview_page(request: Request, viewer: Annotated[Viewer, Depends(access.team_viewer)]):
    services = request.app.state.services
    with services.storage.transaction() as session:
        statuses = overview.tasks_by_status(session, viewer.scope)
    kept = report.kept(services, report.Figures.overview(viewer.team))
    days, waits = overview.read_figures(kept.figures) if kept.figures is not None else ([], None)
    operator = access.is_operator(viewer, services.settings)
    return page(
        request,
        "overview.html",
        viewer,
        title="Overview",
        statuses=statuses,
        kept=kept,
        days=days,
        judgments_plot=plots.daily_bars(days),
        judgments_30d=sum(n for _, n in days),
        waits=waits,
        health=overview.queue_health(services) if operator else None,
        retried=request.query_params.get("retried"),
        settings=services.settings,
    )


@router.post("/retry")
def retry(
    request: Request,
    viewer: Annotated[Viewer, Depends(access.operator)],
    csrf: Annotated[str, Form()] = "",
    delivery: Annotated[str, Form()] = "",
    queue: Annotated[str, Form()] = "",
    job: Annotated[str, Form()] = "",
):
    """Queue a parked delivery again (as `tandem deliveries retry`), or a failed job."""
    access.check_csrf(viewer, csrf)
    services = request.app.state.services
    if delivery:
        try:
            replay(services, [delivery])
        except TandemError as exc:
            raise HTTPException(404, str(exc)) from None
        return RedirectResponse(f"/dashboard/?retried={delivery}#queues", status_code=303)
    if not overview.requeue_failed_job(services, queue, job):
        raise HTTPException(404, f"no failed job {job!r} in queue {queue!r}")
    return RedirectResponse(f"/dashboard/?retried={job}#queues", status_code=303)
