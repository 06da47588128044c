"""Webhook deliveries as GitHub sends them: the example payloads, signed and posted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from app import signatures

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhook-payloads"
SECRET = b"test-webhook-secret"


def deliver(client: httpx.Client, event: str, body: bytes, delivery_id: str, secret: bytes = SECRET) -> httpx.Response:
    return client.post(
        "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": signatures.sign(secret, body),
            "Content-Type": "application/json",
        },
    )


def example(event: str, name: str) -> dict:
    return json.loads((FIXTURES / event / name).read_text())


def headers_for(body: bytes, event: str, delivery: str | None = None, secret: bytes = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signatures.sign(secret, body),
        "Content-Type": "application/json",
    }


def post(client, event: str, payload, delivery: str | None = None, secret: bytes = SECRET):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/github", content=body, headers=headers_for(body, event, delivery, secret))


def installation_created() -> dict:
    return json.loads((FIXTURES / "installation" / "created.payload.json").read_text())


# A delivery whose one effect is a new repository row: lost or doubled, it shows.
INSTALLATION = 4242


def repositories_added(number: int) -> bytes:
    """A delivery whose effect is one new repository row: lost or doubled, it shows."""
    return json.dumps(
        {
            "action": "added",
            "installation": {"id": INSTALLATION, "account": {"login": "evals-org", "id": 7, "type": "Organization"}},
            "repositories_added": [{"id": 100_000 + number, "full_name": f"evals-org/r{number}", "private": False}],
            "repositories_removed": [],
        }
    ).encode()
