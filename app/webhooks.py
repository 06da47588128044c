"""POST /webhooks/github: verify, then queue. No database write and no GitHub call here.

The order matters: the signature is checked over the raw bytes before anything parses them,
and a delivery is only acknowledged (2xx) once it is durably in the inbox (app.intake,
tandem.infra.inbox), from which workers turn it into a job.

Until the signature is checked the sender is anyone, so the body is read only if it carries a
well-formed signature and fits in the process's body budget (app.limits); the HMAC is computed
as the body arrives, and its chunks are joined only once it proves genuine.

This is the one hot path of the web side, so it is a plain ASGI app, mounted in front of
FastAPI (app.main): it pays for no routing, dependency or middleware layers. Nor does it parse a
whole payload to read its action: GitHub writes "action" as a payload's first key, read from the
text (`action_of`); any other body is parsed. The worker parses every payload in full anyway
(tandem.domain.webhook_payloads), and parks a malformed one (it was signed: only GitHub, or whoever
holds the secret, could send it), so the 400s here are for what is plainly not a JSON object.
"""

from __future__ import annotations

import logging
import re

import orjson
import redis

from app import signatures
from app.intake import DeliveryIntake
from app.limits import BodyBudget, BodyRefused, read_body
from tandem.domain.webhook_events import handles
from tandem.infra import metrics
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.settings import Settings

log = logging.getLogger(__name__)

PATH = "/webhooks/github"
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
# Outcomes counted by event (tandem.infra.metrics); before the signature is checked anyone may send
# anything, so the event header is not used as a label then.
REFUSED, IGNORED = "refused", "ignored"
UNVERIFIED = ("unverified", REFUSED)
# An object whose first key is "action", with a string value holding no escape (JSON's whitespace
# only: not the other bytes \s matches). The first key of the outer object is a top-level one.
_LEADING_ACTION = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"action"[ \t\n\r]*:[ \t\n\r]*"([^"\\\x00-\x1f]*)"[ \t\n\r]*[,}]')
_JSON_SPACE = b" \t\n\r"


class NotAnObject(ValueError):
    """The body is not a JSON object."""


def action_of(body: bytes) -> str | None:
    """The payload's top-level "action" (None if it has none, or not a string), reading only its
    start when "action" comes first, as GitHub writes it; otherwise parsing the whole body.

    Raises NotAnObject for a body that is not a JSON object, UnicodeDecodeError for one not UTF-8
    (on the fast path, the caller's decoding of the body tells that).
    """
    if (leading := _LEADING_ACTION.match(body)) and body.rstrip(_JSON_SPACE).endswith(b"}"):
        return leading.group(1).decode()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise NotAnObject("body is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise NotAnObject("body is not a JSON object")
    action = payload.get("action")
    return action if isinstance(action, str) else None


class WebhookReceiver:
    def __init__(self, settings: Settings, intake: DeliveryIntake, budget: BodyBudget):
        self.settings = settings
        self.intake = intake
        self.budget = budget

    async def __call__(self, scope, receive, send) -> None:
        status, answer, (event, outcome) = await self._handle(scope, receive)
        metrics.DELIVERIES.labels(event, outcome).inc()
        body = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive) -> tuple[int, dict, tuple[str, str]]:
        if scope["method"] != "POST":
            return 405, {"message": "use POST"}, UNVERIFIED
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if self.settings.webhook_secret is None:
            message = "Tandem has no webhook secret yet; register the app with `tandem setup`"
            return 503, {"message": message}, UNVERIFIED
        claimed = signatures.claimed_digest(headers.get("x-hub-signature-256"))
        if claimed is None:
            return 401, {"message": "signature missing or wrong"}, UNVERIFIED
        mac = signatures.streaming(self.settings.webhook_secret.get_secret_value().encode())
        try:
            chunks = await read_body(headers, receive, self.budget, MAX_BODY, mac.update)
        except BodyRefused as refusal:
            return refusal.status, {"message": refusal.message}, UNVERIFIED
        if not signatures.matches(mac, claimed):
            return 401, {"message": "signature missing or wrong"}, UNVERIFIED
        body = b"".join(chunks)
        chunks.clear()

        event, delivery_id = headers.get("x-github-event"), headers.get("x-github-delivery")
        if not event or not delivery_id:
            message = "X-GitHub-Event and X-GitHub-Delivery headers are required"
            return 400, {"message": message}, (event or "none", REFUSED)
        try:
            action, text = action_of(body), body.decode()
        except (NotAnObject, UnicodeDecodeError) as exc:
            message = str(exc) if isinstance(exc, NotAnObject) else "body is not UTF-8 JSON"
            return 400, {"message": message}, (event, REFUSED)
        if event == "ping":  # rare, so parsed again for its zen (an object, if valid: action_of saw its start)
            try:
                zen = orjson.loads(body).get("zen")
            except orjson.JSONDecodeError:
                zen = None
            return 200, {"message": "pong", "zen": zen}, (event, IGNORED)
        if not handles(event, action):
            ignored = {"message": "ignored: Tandem does not handle this event", "event": event, "action": action}
            return 202, ignored, (event, IGNORED)
        try:
            queued = await self.intake.queue(IncomingDelivery(delivery_id, event, action, text))
        except redis.RedisError as exc:
            log.error("delivery %s not queued: Redis unavailable (%s)", delivery_id, type(exc).__name__, exc_info=True)
            message = "queue unavailable; the delivery was not accepted, redeliver it later"
            return 503, {"message": message}, (event, REFUSED)
        answer = {"message": "queued" if queued else "already queued", "delivery": delivery_id}
        return 202, answer, (event, "accepted" if queued else "duplicate")
