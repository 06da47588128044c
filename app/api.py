"""The HTTP API for research teams: submit tasks, follow them, read their judgments.

Every route needs a bearer API token (`tandem token create`). Storage work runs in the thread
pool, off the event loop.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tandem import export, tasks, tokens
from tandem.errors import NotFound, ServiceUnavailable
from tandem.services import Services
from tandem.task_spec import InvalidTask, parse_task

router = APIRouter(prefix="/api")
bearer = HTTPBearer(auto_error=False)

MAX_TASK_BYTES = 30 * 1024 * 1024
TOO_LARGE = f"task over {MAX_TASK_BYTES // 2**20} MB; an output may be at most 10 MB"


def _services(request: Request) -> Services:
    return request.app.state.services


def api_client(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The name of the token the request carries; 401 without a live one."""
    if credentials is None:
        raise HTTPException(401, "an API token is required: Authorization: Bearer <token>")
    with _services(request).storage.transaction() as session:
        name = tokens.authenticate(session, credentials.credentials)
    if name is None:
        raise HTTPException(401, "unknown or revoked API token")
    return name


Client = Annotated[str, Depends(api_client)]


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_TASK_BYTES:
        raise HTTPException(413, TOO_LARGE)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_TASK_BYTES:
            raise HTTPException(413, TOO_LARGE)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise HTTPException(400, "the body must be a JSON task") from None


@router.post("/tasks", status_code=202)
async def submit_task(request: Request, client: Client) -> JSONResponse:
    data = await _read_json(request)
    try:
        spec = parse_task(data)
        task_id = await run_in_threadpool(tasks.submit, _services(request), spec, client)
    except InvalidTask as exc:
        return JSONResponse({"message": "invalid task", "errors": exc.errors}, status_code=400)
    except ServiceUnavailable as exc:
        return JSONResponse({"message": str(exc)}, status_code=503)
    return JSONResponse({"id": task_id, "status": "queued", "url": f"/api/tasks/{task_id}"}, status_code=202)


def _task_view(services: Services, task_id: int) -> dict:
    with services.storage.transaction() as session:
        return tasks.describe(tasks.get_task(session, task_id))


@router.get("/tasks/{task_id}")
def show_task(request: Request, task_id: int, client: Client) -> dict:
    try:
        return _task_view(_services(request), task_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _judgments(services: Services, task_id: int) -> list[dict]:
    with services.storage.transaction() as session:
        tasks.get_task(session, task_id)
        return export.judgments_for_task(session, task_id)


@router.get("/tasks/{task_id}/judgments")
def task_judgments(request: Request, task_id: int, client: Client) -> list[dict]:
    """Every judgment of the task with its history and the de-blinded models (for the research team)."""
    try:
        return _judgments(_services(request), task_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
