"""A processed delivery leaves nothing in Redis: its job (which holds the whole webhook body)
goes as soon as it succeeded, and duplicates are still told apart (by the database)."""

from __future__ import annotations

import json
import uuid

import httpx

from app.main import create_app
from tandem.infra.models import ProcessedDelivery
from tests.conftest import run_jobs
from tests.servers import LiveServer
from tests.support.deliveries import deliver, example
from tests.support.redis_tools import footprint


def deliver_comments(services, client, count: int) -> list[str]:
    """Real-sized `issue_comment` deliveries (handled, and answered by no GitHub call)."""
    body = json.dumps(example("issue_comment", "created.payload.json")).encode()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for delivery_id in ids:
        assert deliver(client, "issue_comment", body, delivery_id).status_code == 202
    run_jobs(services)
    return ids


def test_processed_deliveries_leave_no_job_and_no_bytes_per_delivery_in_redis(services):
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.url) as client:
        first = deliver_comments(services, client, 20)
        before = footprint(services.redis)
        second = deliver_comments(services, client, 100)
        after = footprint(services.redis)
        # GitHub's redelivery of a processed GUID is still a no-op, with its job gone.
        assert (
            deliver(
                client, "issue_comment", json.dumps(example("issue_comment", "created.payload.json")).encode(), first[0]
            ).status_code
            == 202
        )
        run_jobs(services)

    left = [key for key in after if any(delivery_id in key for delivery_id in first + second)]
    assert left == [], "keys named after processed deliveries"
    # What remains is the same few keys (queues, the inbox stream, the last worker's record),
    # whatever the number of deliveries: no bytes per delivery.
    grown = sum(after.values()) - sum(before.values())
    assert grown / len(second) < 32, f"{grown} bytes more after {len(second)} more deliveries: {sorted(after)}"
    with services.storage.transaction() as session:
        assert session.query(ProcessedDelivery).count() == len(first) + len(second)
