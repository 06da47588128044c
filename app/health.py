"""Liveness (/healthz) and readiness (/readyz: Redis, database and credentials; and a warning
when Redis does not persist what it accepted)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tandem import readiness

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    problems = await run_in_threadpool(readiness.problems, request.app.state.services, github=False)
    # Warnings (Redis not persisting) do not make the app unready: it works, at a risk.
    warnings = await run_in_threadpool(readiness.persistence_warnings, request.app.state.services)
    extra = {"warnings": warnings} if warnings else {}
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems} | extra, status_code=503)
    return JSONResponse({"status": "ready"} | extra)
