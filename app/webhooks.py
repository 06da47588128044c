"""POST /webhooks/github: verify, then queue. No database write and no GitHub call here.

The order matters: the signature is checked over the raw bytes before anything parses them,
and a delivery is only acknowledged (2xx) once it is durably in the inbox (app.intake,
tandem.inbox), from which workers turn it into a job.

This is the one hot path of the web side, so it is a plain ASGI app, mounted in front of
FastAPI (app.main): it pays for no routing, dependency or middleware layers.
"""

from __future__ import annotations

import logging

import orjson
import redis

from app import signatures
from app.intake import DeliveryIntake
from tandem.inbox import IncomingDelivery
from tandem.settings import Settings
from workers import deliveries

log = logging.getLogger(__name__)

PATH = "/webhooks/github"
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class _TooLarge(Exception):
    pass


class WebhookReceiver:
    def __init__(self, settings: Settings, intake: DeliveryIntake):
        self.settings = settings
        self.intake = intake

    async def __call__(self, scope, receive, send) -> None:
        status, answer = await self._handle(scope, receive)
        body = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive) -> tuple[int, dict]:
        if scope["method"] != "POST":
            return 405, {"message": "use POST"}
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if self.settings.webhook_secret is None:
            return 503, {"message": "Tandem has no webhook secret yet; finish the setup at /setup"}
        try:
            body = await _read_capped(headers, receive)
        except _TooLarge:
            return 413, {"message": "payload over 25 MB"}
        secret = self.settings.webhook_secret.get_secret_value().encode()
        if not signatures.verify(secret, body, headers.get("x-hub-signature-256")):
            return 401, {"message": "signature missing or wrong"}

        event, delivery_id = headers.get("x-github-event"), headers.get("x-github-delivery")
        if not event or not delivery_id:
            return 400, {"message": "X-GitHub-Event and X-GitHub-Delivery headers are required"}
        try:
            payload = orjson.loads(body)  # rejects what is not UTF-8 JSON
        except orjson.JSONDecodeError:
            return 400, {"message": "body is not UTF-8 JSON"}
        if not isinstance(payload, dict):
            return 400, {"message": "body is not a JSON object"}
        if event == "ping":
            return 200, {"message": "pong", "zen": payload.get("zen")}

        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        if not deliveries.handles(event, action):
            return 202, {"message": "ignored: Tandem does not handle this event", "event": event, "action": action}
        try:
            queued = await self.intake.queue(IncomingDelivery(delivery_id, event, action, body.decode()))
        except redis.RedisError as exc:
            log.error("delivery %s not queued: Redis unavailable (%s)", delivery_id, type(exc).__name__)
            return 503, {"message": "queue unavailable; the delivery was not accepted, redeliver it later"}
        return 202, {"message": "queued" if queued else "already queued", "delivery": delivery_id}


async def _read_capped(headers: dict[str, str], receive) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)
