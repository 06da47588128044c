"""GET /api/export: `tandem export` over HTTP, streamed, with the same formats and filters.

It needs an API token with the `export` scope and exports the token's team's tasks only. JSON
Lines stream a row at a time as they are read; Parquet (``parquet=true``) is written to a
temporary file first (a Parquet file's footer describes all of it) and then streamed from there.
The rows are read in the thread pool (a sync iterator), off the event loop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Generator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from app.api import requires
from app.streaming import ClosingStreamingResponse
from tandem.domain.export_formats import Selection, format_rows, write
from tandem.domain.export_formats.writing import line
from tandem.infra.errors import TandemError
from tandem.infra.services import Services
from tandem.infra.tokens import Client, Scope

router = APIRouter(prefix="/api")

CHUNK = 1 << 16


@router.get("/export")
def export(
    request: Request,
    client: Client = requires(Scope.EXPORT),
    *,
    format: str = "jsonl",
    parquet: bool = False,
    since: str | None = None,
    repo: str | None = None,
    round: int | None = None,
    metadata: Annotated[list[str], Query(default_factory=list, description="KEY=VALUE; repeat for several")],
    include_unapproved: bool = False,
    include_gold: bool = False,
    ties: str = "keep",
    with_files: bool = False,
    conversational: bool = False,
) -> StreamingResponse:
    """The team's judgments in a training or leaderboard format (see `tandem export --help`)."""
    try:
        format_rows(format)
        selection = Selection.parse(
            since=since,
            repo=repo,
            round=round,
            metadata=metadata,
            ties=ties,
            include_unapproved=include_unapproved,
            include_gold=include_gold,
            with_files=with_files,
            conversational=conversational,
            team=client.team,
        )
    except TandemError as exc:
        raise HTTPException(400, str(exc)) from None
    return streamed(request.app.state.services, format, selection, parquet=parquet)


def streamed(
    services: Services, name: str, selection: Selection, *, parquet: bool, filename: str | None = None
) -> StreamingResponse:
    """The export as a streamed download (also the dashboard's)."""
    if parquet:
        return ClosingStreamingResponse(
            _parquet(services, name, selection),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{filename or name}.parquet"'},
        )
    headers = {"Content-Disposition": f'attachment; filename="{filename}.jsonl"'} if filename else None
    return ClosingStreamingResponse(
        _lines(services, name, selection), media_type="application/x-ndjson", headers=headers
    )


def _lines(services: Services, name: str, selection: Selection) -> Generator[bytes, None, None]:
    with services.storage.transaction() as session:
        for row in format_rows(name)(session, selection):
            yield line(row)


def _parquet(services: Services, name: str, selection: Selection) -> Generator[bytes, None, None]:
    with tempfile.TemporaryFile() as scratch:
        with services.storage.transaction() as session:
            write(session, name, selection, scratch, parquet=True)
        scratch.seek(0)
        while chunk := scratch.read(CHUNK):
            yield chunk
