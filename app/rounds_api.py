"""The runner protocol over HTTP: a team's model runner finds the rounds awaiting its outputs,
reads each model's code, and hands the outputs back (README, "The model runner").

Every route needs an API token with the `runner` scope and sees only the token's team's tasks
(another team's task is answered 404, as a missing one is). Rounds and outputs are keyed by model
name: nothing here tells a runner which model is A.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api import _read_json, requires
from app.errors import error_response
from tandem.domain import rounds, runner_protocol
from tandem.domain.task_spec import InvalidTask
from tandem.infra.errors import NotFound
from tandem.infra.services import Services
from tandem.infra.tokens import Client, Scope

router = APIRouter(prefix="/api")

MAX_PAGE = 100


def _services(request: Request) -> Services:
    return request.app.state.services


@router.get("/rounds")
def list_rounds(
    request: Request,
    status: Annotated[str, Query(pattern="^awaiting_outputs$")],
    after: Annotated[int | None, Query(ge=0, lt=2**31)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    client: Client = requires(Scope.RUNNER),
) -> dict:
    """The team's rounds awaiting outputs, oldest first; `next` is the cursor of the next page
    (null on the last one)."""
    with _services(request).storage.transaction() as session:
        # One more than asked: whether a next page exists, without a second query.
        found = rounds.awaiting_rounds(session, team=client.team, after_id=after, limit=limit + 1)
        page = found[:limit]
        following = rounds.round_id_of(session, page[-1].task_id, page[-1].round) if len(found) > limit else None
        return {"rounds": [runner_protocol.describe_round(view) for view in page], "next": following}


def _round(services: Services, task_id: int, number: int, team: str):
    with services.storage.transaction() as session:
        return rounds.round_view(session, task_id, number, team=team)


@router.get("/tasks/{task_id}/rounds/{number}")
def show_round(request: Request, task_id: int, number: int, client: Client = requires(Scope.RUNNER)) -> dict:
    try:
        return runner_protocol.describe_round(_round(_services(request), task_id, number, client.team))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/tasks/{task_id}/rounds/{number}/models/{model}/patch")
def model_patch(request: Request, task_id: int, number: int, model: str, client: Client = requires(Scope.RUNNER)):
    """The model's cumulative diff from the base to its head at the start of the round."""
    services = _services(request)
    try:
        if model not in _round(services, task_id, number, client.team).models:
            raise NotFound(f"task {task_id} has no model {model!r}")
        patch = rounds.model_patch(services, task_id, number, model)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(patch, media_type="text/x-diff")


@router.get("/tasks/{task_id}/base.tar")
def base_archive(request: Request, task_id: int, client: Client = requires(Scope.RUNNER)):
    """The task's base tree as a tar archive: with a model's patch, all a runner needs."""
    try:
        archive = runner_protocol.base_archive(_services(request), task_id, team=client.team)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(archive, media_type="application/x-tar")


@router.post("/tasks/{task_id}/rounds/{number}/outputs")
async def submit_outputs(
    request: Request, task_id: int, number: int, client: Client = requires(Scope.RUNNER)
) -> JSONResponse:
    """Both models' outputs for the round: 202 "accepted", 200 "duplicate" for the same again."""
    data = await _read_json(request)
    services = _services(request)
    try:
        outputs = runner_protocol.parse_outputs(data)
        await run_in_threadpool(_round, services, task_id, number, client.team)
        status = await run_in_threadpool(
            rounds.submit_outputs, services, task_id, number, outputs, submitted_by=f"runner:{client.name}"
        )
    except InvalidTask as exc:
        return error_response(400, "invalid outputs", exc.errors)
    except NotFound as exc:
        return error_response(404, str(exc))
    except rounds.RoundConflict as exc:
        return error_response(409, str(exc))
    where = f"/api/tasks/{task_id}/rounds/{number}"
    return JSONResponse({"status": status, "url": where}, status_code=202 if status == "accepted" else 200)


class FailureReport(BaseModel):
    model: str | None = Field(default=None, max_length=255)
    reason: str = Field(min_length=1, max_length=4000)


@router.post("/tasks/{task_id}/rounds/{number}/failures", status_code=202)
def report_failure(
    request: Request, task_id: int, number: int, report: FailureReport, client: Client = requires(Scope.RUNNER)
) -> dict:
    """The runner could not answer (for one model, or at all): recorded on the round, which
    keeps awaiting outputs until it expires or a later submission succeeds."""
    services = _services(request)
    try:
        _round(services, task_id, number, client.team)
        rounds.report_runner_failure(services, task_id, number, model=report.model, reason=report.reason)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except rounds.RoundConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return {"status": "recorded"}
