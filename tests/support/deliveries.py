"""Webhook deliveries as GitHub sends them: the example payloads, signed and posted."""

from __future__ import annotations

import json
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
