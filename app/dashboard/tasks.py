"""The tasks: a filterable, paginated table, and each task's page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from app.dashboard import access
from app.dashboard.access import Viewer
from app.dashboard.render import page
from tandem.domain.dashboard import tasks
from tandem.infra.errors import NotFound

router = APIRouter()


@router.get("/tasks")
def task_list(
    request: Request,
    viewer: Annotated[Viewer, Depends(access.team_viewer)],
    status: str = "",
    repo: str = "",
    page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
):
    with request.app.state.services.storage.transaction() as session:
        found = tasks.task_page(session, viewer.scope, status=status or None, repo=repo or None, page=page_number)
        repositories = tasks.repositories(session, viewer.scope)
    # An empty page says whether the filters or the team have no tasks: the repositories tell.
    return page(
        request,
        "tasks.html",
        viewer,
        title="Tasks",
        found=found,
        any_tasks=bool(repositories),
        repositories=repositories,
        filters={"status": status, "repo": repo},
    )


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: int, viewer: Annotated[Viewer, Depends(access.team_viewer)]):
    try:
        with request.app.state.services.storage.transaction() as session:
            task = tasks.task_detail(session, task_id, viewer.scope, with_models=viewer.sees_models)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return page(request, "task.html", viewer, title=f"Task {task_id}", task=task)
