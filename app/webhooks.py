"""POST /webhooks/github: verify, then queue. No database write and no GitHub call here.

The order matters: the signature is checked over the raw bytes before anything parses them,
and a delivery is only acknowledged (2xx) once it is durably queued.
"""

from __future__ import annotations

import json
import logging

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import signatures
from workers import deliveries

log = logging.getLogger(__name__)

router = APIRouter()

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


@router.post("/webhooks/github")
async def receive_webhook(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    if settings.webhook_secret is None:
        return _answer(503, "Tandem has no webhook secret yet; finish the setup at /setup")
    try:
        body = await _read_capped(request)
    except _TooLarge:
        return _answer(413, "payload over 25 MB")
    secret = settings.webhook_secret.get_secret_value().encode()
    if not signatures.verify(secret, body, request.headers.get("x-hub-signature-256")):
        return _answer(401, "signature missing or wrong")

    event = request.headers.get("x-github-event")
    delivery_id = request.headers.get("x-github-delivery")
    if not event or not delivery_id:
        return _answer(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        payload = json.loads(body)
    except ValueError:
        return _answer(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, "body is not a JSON object")
    if event == "ping":
        return _answer(200, "pong", zen=payload.get("zen"))

    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    if not deliveries.handles(event, action):
        return _answer(202, "ignored: Tandem does not handle this event", event=event, action=action)
    try:
        queued = deliveries.enqueue_delivery(request.app.state.services, delivery_id, event, action, payload)
    except redis.RedisError as exc:
        log.error("delivery %s not queued: Redis unavailable (%s)", delivery_id, type(exc).__name__)
        return _answer(503, "queue unavailable; the delivery was not accepted, redeliver it later")
    return _answer(202, "queued" if queued else "already queued", delivery=delivery_id)
