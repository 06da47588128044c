"""The data page: one-click downloads of the export, with the filters applied.

The export names the models, so it is for the research role. A download streams the export of the
viewer's team's tasks in any of `tandem export`'s formats (tandem.domain.export_formats), as JSON Lines or
Parquet, as GET /api/export does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from app.dashboard import access
from app.dashboard.access import Viewer
from app.dashboard.leaderboard import FilterForm, filters_from
from app.dashboard.render import page
from app.export_api import streamed
from tandem.domain.dashboard import tasks
from tandem.domain.export_formats import FORMATS, Selection

router = APIRouter()


def _researcher(viewer: Annotated[Viewer, Depends(access.team_viewer)]) -> Viewer:
    if not viewer.sees_models:
        raise HTTPException(
            403, "the export names the models: it is for the research role (a token with the export scope)"
        )
    return viewer


Researcher = Annotated[Viewer, Depends(_researcher)]


@router.get("/data")
def data_page(request: Request, viewer: Researcher, values: FilterForm):
    with request.app.state.services.storage.transaction() as session:
        repositories = tasks.repositories(session, viewer.scope)
    return page(
        request, "data.html", viewer, title="Data", values=values, repositories=repositories, formats=list(FORMATS)
    )


@router.get("/data/judgments.jsonl")
def download_raw(request: Request, viewer: Researcher, values: FilterForm):
    return download(request, viewer, values)


@router.get("/data/export")
def download(request: Request, viewer: Researcher, values: FilterForm, format: str = "jsonl", parquet: bool = False):
    if format not in FORMATS:
        raise HTTPException(400, f"format {format!r}: use one of {', '.join(FORMATS)}")
    filters = filters_from(values)
    selection = Selection(
        since=filters.since,
        repo=filters.repo,
        round=filters.round,
        metadata=filters.metadata,
        include_unapproved=filters.include_unapproved,
        team=viewer.team,
    )
    stamp = f"-{filters.repo.replace('/', '-')}" if filters.repo else ""
    return streamed(request.app.state.services, format, selection, parquet=parquet, filename=f"tandem-{format}{stamp}")
