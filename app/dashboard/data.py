"""The data page: one-click downloads of the export, with the filters applied.

The export names the models, so it is for the research role. The download streams the export
(tandem.export, as `tandem export --format jsonl`) of the viewer's team's tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from app.dashboard import access
from app.dashboard.access import Viewer
from app.dashboard.leaderboard import FilterForm, filters_from
from app.dashboard.render import page
from tandem import export
from tandem.dashboard import tasks
from tandem.services import Services

router = APIRouter()


def _researcher(viewer: Annotated[Viewer, Depends(access.team_viewer)]) -> Viewer:
    if not viewer.sees_models:
        raise HTTPException(403, "the export names the models: it is for the research role (a token with the export scope)")
    return viewer


Researcher = Annotated[Viewer, Depends(_researcher)]


@router.get("/data")
def data_page(request: Request, viewer: Researcher, values: FilterForm):
    with request.app.state.services.storage.transaction() as session:
        repositories = tasks.repositories(session, viewer.scope)
    return page(request, "data.html", viewer, title="Data", values=values, repositories=repositories)


def _lines(services: Services, viewer: Viewer, repo: str | None, since: datetime | None) -> Iterator[bytes]:
    with services.storage.transaction() as session:
        team_tasks = set(tasks.task_ids(session, viewer.scope))
        for record in export.iter_judgment_records(session, since=since, repo=repo):
            if record["task_id"] in team_tasks:
                yield json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@router.get("/data/judgments.jsonl")
def download(request: Request, viewer: Researcher, values: FilterForm):
    filters = filters_from(viewer, values)
    stamp = f"-{filters.repo.replace('/', '-')}" if filters.repo else ""
    return StreamingResponse(
        _lines(request.app.state.services, viewer, filters.repo, filters.since),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="tandem-judgments{stamp}.jsonl"'},
    )
