"""The delivery job of an outgoing webhook to the team's model runner (tandem.domain.runner_events)."""

from __future__ import annotations

import logging

import httpx

from tandem.domain.runner_events import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature
from tandem.infra import queue, services
from workers.jobs import runs_on

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


class RunnerRefused(Exception):
    """The runner answered the delivery with an error (or not at all): the job is retried."""


@runs_on(queue.DEFAULT)
def deliver_runner_event(*, delivery: str, event: str, body: str) -> str:
    settings = services.current().settings
    if not settings.runner_url:
        log.info("runner delivery %s (%s) dropped: TANDEM_RUNNER_URL is no longer set", delivery, event)
        return "dropped: no runner URL"
    if settings.runner_secret is None:  # an unsigned body would be (rightly) refused by the runner
        raise RunnerRefused("TANDEM_RUNNER_URL is set but TANDEM_RUNNER_SECRET is not: deliveries are signed")
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tandem-Hookshot",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery,
        SIGNATURE_HEADER: signature(settings.runner_secret.get_secret_value().encode(), raw),
    }
    try:
        response = httpx.post(settings.runner_url, content=raw, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise RunnerRefused(f"runner delivery {delivery} ({event}) failed: {type(exc).__name__}: {exc}") from None
    if not response.is_success:
        raise RunnerRefused(f"runner delivery {delivery} ({event}) answered {response.status_code}")
    log.info("runner delivery %s (%s) answered %s", delivery, event, response.status_code)
    return f"delivered: {response.status_code}"
