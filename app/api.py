"""The HTTP API for research teams: submit tasks, follow them, read their judgments.

Every route needs a bearer API token (`tandem token create`) with the route's scope, and sees
only the token's team's tasks: another team's task is answered 404, as a missing one is. Errors
have one shape (app.errors). Storage work runs in the thread pool, off the event loop.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.errors import error_response
from app.limits import BodyRefused, read_body
from app.streaming import ClosingStreamingResponse
from tandem.domain import export, tasks
from tandem.domain.task_spec import InvalidTask, parse_task
from tandem.domain.vocabulary import TaskStatus
from tandem.infra import tokens
from tandem.infra.errors import NotFound, ServiceUnavailable
from tandem.infra.services import Services
from tandem.infra.tokens import Client, Scope

router = APIRouter(prefix="/api")
bearer = HTTPBearer(auto_error=False)

MAX_TASK_BYTES = 30 * 1024 * 1024
TOO_LARGE = f"task over {MAX_TASK_BYTES // 2**20} MB; an output may be at most 10 MB"
# A task is a few levels deep (metadata included); deeper JSON is refused before anything walks it.
MAX_TASK_DEPTH = 32


def _services(request: Request) -> Services:
    return request.app.state.services


def _client(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Client:
    if credentials is None:
        raise HTTPException(
            401, "an API token is required: Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    with _services(request).storage.transaction() as session:
        client = tokens.authenticate(session, credentials.credentials)
    if client is None:
        raise HTTPException(401, "unknown or revoked API token", {"WWW-Authenticate": "Bearer"})
    return client


def requires(scope: Scope):
    """A dependency: the request's client, if its token is live and has the scope."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Client:
        client = _client(request, credentials)
        if scope not in client.scopes:
            raise HTTPException(403, f"this token lacks the {scope} scope (`tandem token create --scope {scope}`)")
        return client

    return Depends(dependency)


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in parsed JSON (iteratively: no recursion to exhaust)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


async def _read_json(request: Request) -> Any:
    try:
        chunks = await read_body(request.headers, request.receive, request.app.state.body_budget, MAX_TASK_BYTES)
    except BodyRefused as refusal:
        raise HTTPException(refusal.status, TOO_LARGE if refusal.status == 413 else refusal.message) from None
    try:
        data = orjson.loads(b"".join(chunks))  # refuses nesting over 1024 levels, without recursing
    except orjson.JSONDecodeError:
        raise HTTPException(400, "the body must be a JSON task") from None
    if _depth(data) > MAX_TASK_DEPTH:
        raise HTTPException(400, f"the task nests deeper than {MAX_TASK_DEPTH} levels")
    return data


@router.post("/tasks", status_code=202)
async def submit_task(request: Request, client: Client = requires(Scope.SUBMIT)) -> JSONResponse:
    data = await _read_json(request)
    try:
        spec = parse_task(data)
        task_id = await run_in_threadpool(tasks.submit, _services(request), spec, client.name, team=client.team)
    except InvalidTask as exc:
        return error_response(400, "invalid task", exc.errors)
    except ServiceUnavailable as exc:
        return error_response(503, str(exc))
    return JSONResponse({"id": task_id, "status": TaskStatus.QUEUED, "url": f"/api/tasks/{task_id}"}, status_code=202)


MAX_PAGE = 100


@router.get("/tasks")
def list_tasks(
    request: Request,
    status: Annotated[TaskStatus | None, Query()] = None,
    repo: Annotated[str | None, Query(max_length=255)] = None,
    after: Annotated[int | None, Query(ge=0, lt=2**31)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    client: Client = requires(Scope.READ),
) -> dict:
    """The team's tasks in id order, filtered by status and repository; `next` is the cursor of
    the next page (`after=`), null on the last one."""
    with _services(request).storage.transaction() as session:
        # One more than asked: whether a next page exists, without a second query.
        found = tasks.list_tasks(session, team=client.team, status=status, repo=repo, after_id=after, limit=limit + 1)
        page = found[:limit]
        names = Scope.EXPORT in client.scopes  # gold answers and leak findings name models
        return {
            "tasks": [tasks.summarize(task, with_models=names) for task in page],
            "next": page[-1].id if len(found) > limit else None,
        }


def _task_view(services: Services, task_id: int, client: Client) -> dict:
    with services.storage.transaction() as session:
        task = tasks.get_task(session, task_id, team=client.team)
        # Gold answers and leak findings name models: only for clients that may export them.
        return tasks.describe(task, with_models=Scope.EXPORT in client.scopes)


@router.get("/tasks/{task_id}")
def show_task(request: Request, task_id: int, client: Client = requires(Scope.READ)) -> dict:
    try:
        return _task_view(_services(request), task_id, client)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _check_task(services: Services, task_id: int, team: str) -> None:
    with services.storage.transaction() as session:
        tasks.get_task(session, task_id, team=team)


# Records are sent in chunks of about this many bytes: one chunk per record would cost a trip
# through the thread pool each, and the whole list at once would hold it all in memory.
CHUNK_BYTES = 64 * 1024


def _judgments_stream(services: Services, task_id: int) -> Generator[bytes, None, None]:
    """The task's export objects as one JSON array, written as they are read."""
    with services.storage.transaction() as session:
        chunk, separator = bytearray(b"["), b""
        for record in export.iter_judgment_records(session, task_id=task_id):
            chunk += separator + orjson.dumps(record)
            separator = b","
            if len(chunk) >= CHUNK_BYTES:
                yield bytes(chunk)
                chunk.clear()
        yield bytes(chunk + b"]")


@router.get("/tasks/{task_id}/judgments", response_model=None)
async def task_judgments(request: Request, task_id: int, client: Client = requires(Scope.EXPORT)) -> StreamingResponse:
    """Every judgment of the task with its history and the de-blinded models (for the research
    team), streamed: memory stays bounded however many judgments the task has."""
    services = _services(request)
    try:
        await run_in_threadpool(_check_task, services, task_id, client.team)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return ClosingStreamingResponse(_judgments_stream(services, task_id), media_type="application/json")
