"""Every real example payload, delivered signed to a running app, is processed exactly once."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest

from app.main import create_app
from tandem.domain import webhook_events
from tandem.infra import delivery_queue, queue
from tandem.infra.models import DeadLetter, Installation, ProcessedDelivery, Repository
from tests.conftest import processed_runs, run_jobs
from tests.servers import LiveServer
from tests.support.deliveries import FIXTURES, deliver, example

EXAMPLES = sorted(FIXTURES.glob("*/*.json"))


def test_every_example_payload_is_accepted_and_handled_ones_processed_exactly_once(services, caplog):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    sent: dict[str, tuple[str, str | None]] = {}
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.url) as client:
        for path in EXAMPLES:
            event, body = path.parent.name, path.read_bytes()
            delivery_id = str(uuid.uuid4())
            for _attempt in range(2):  # GitHub's redelivery keeps the GUID
                response = deliver(client, event, body, delivery_id)
                assert 200 <= response.status_code < 300, (path.name, response.text)
                run_jobs(services)
            sent[delivery_id] = (event, json.loads(body).get("action"))

        for path in EXAMPLES:  # the same bodies with a wrong signature leave no trace
            assert deliver(client, path.parent.name, path.read_bytes(), str(uuid.uuid4()), b"wrong").status_code == 401

    handled = {d for d, (event, action) in sent.items() if webhook_events.handles(event, action)}
    assert handled, "no example is handled: the router is empty"
    registry = queue.queue(queue.WEBHOOKS, services.redis)
    assert registry.failed_job_registry.count == 0
    # Each handled delivery arrived twice, and its effects were committed once.
    assert processed_runs(caplog) == {delivery_id: 1 for delivery_id in handled}
    with services.storage.transaction() as session:
        processed = {row.delivery_id for row in session.query(ProcessedDelivery)}
        assert session.query(DeadLetter).count() == 0
    assert processed == handled


def process(services, event: str, payload: dict) -> None:
    assert delivery_queue.accept_delivery(services, str(uuid.uuid4()), event, payload.get("action"), payload)
    run_jobs(services)


def test_installation_lifecycle_keeps_the_tables_current(services):
    created = example("installation", "created.payload.json")
    installation_id = created["installation"]["id"]
    process(services, "installation", created)
    with services.storage.transaction() as session:
        installation = session.get(Installation, installation_id)
        assert installation.account_login == created["installation"]["account"]["login"]
        assert {r.full_name for r in installation.repositories} == {r["full_name"] for r in created["repositories"]}

    suspended = example("installation", "suspend.payload.json")
    suspended["installation"]["id"] = installation_id
    process(services, "installation", suspended)
    with services.storage.transaction() as session:
        assert session.get(Installation, installation_id).suspended_at is not None

    unsuspended = example("installation", "unsuspend.payload.json")
    unsuspended["installation"]["id"] = installation_id
    process(services, "installation", unsuspended)
    with services.storage.transaction() as session:
        assert session.get(Installation, installation_id).suspended_at is None

    added = example("installation_repositories", "added.payload.json")
    added["installation"]["id"] = installation_id
    added["repositories_added"].append({"id": 990001, "name": "second", "full_name": "octocat/second", "private": True})
    process(services, "installation_repositories", added)
    removed = example("installation_repositories", "removed.payload.json")
    removed["installation"]["id"] = installation_id
    removed["repositories_removed"] = added["repositories_added"][:1]
    process(services, "installation_repositories", removed)
    with services.storage.transaction() as session:
        first, *others = added["repositories_added"]
        assert session.get(Repository, first["id"]).removed_at is not None
        assert all(session.get(Repository, r["id"]).removed_at is None for r in others)

    deleted = example("installation", "deleted.payload.json")
    deleted["installation"]["id"] = installation_id
    process(services, "installation", deleted)
    with services.storage.transaction() as session:
        installation = session.get(Installation, installation_id)
        assert installation.deleted_at is not None
        assert all(r.removed_at is not None for r in installation.repositories)


@pytest.mark.parametrize("field", ["repositories", "installation.repository_selection", "installation.permissions"])
def test_a_payload_missing_optional_fields_still_processes(services, field):
    created = example("installation", "created.payload.json")
    *parents, name = field.split(".")
    holder = created
    for parent in parents:
        holder = holder[parent]
    del holder[name]  # the example has it (KeyError otherwise): its absence is what is tested
    process(services, "installation", created)
    assert queue.queue(queue.WEBHOOKS, services.redis).failed_job_registry.count == 0
    with services.storage.transaction() as session:
        installation = session.get(Installation, created["installation"]["id"])
        assert installation.account_login == created["installation"]["account"]["login"]
        assert installation.permissions == created["installation"].get("permissions", {})
        repositories = {repository.full_name for repository in installation.repositories}
    assert repositories == (set() if field == "repositories" else {r["full_name"] for r in created["repositories"]})
