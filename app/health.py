"""Liveness (/healthz) and readiness (/readyz: Redis, database and credentials). /readyz also
warns when Redis does not persist what it accepted, and shows the workers' heartbeat; neither
makes the app unready: it works, at a risk, and deliveries wait safely in the inbox.
/metrics: Prometheus's scrape (tandem.infra.metrics); keep it to the monitoring network at the proxy."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tandem.infra import metrics, readiness

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    problems = await run_in_threadpool(readiness.problems, services, github=False)
    warnings = await run_in_threadpool(readiness.persistence_warnings, services)
    worker = await run_in_threadpool(readiness.worker_summary, services)
    body: dict[str, Any] = {"status": "unavailable", "problems": problems} if problems else {"status": "ready"}
    if warnings:
        body["warnings"] = warnings
    if worker is not None:
        body["worker"] = worker
    return JSONResponse(body, status_code=503 if problems else 200)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    body, content_type = await run_in_threadpool(metrics.exposition, request.app.state.services.redis)
    return Response(body, media_type=content_type)
