"""The inbox between intake and the webhooks queue: nothing accepted is ever lost or doubled."""

from __future__ import annotations

import json
import uuid

from tandem.infra import inbox, job_names, queue
from tandem.infra.delivery_queue import accept_deliveries, relay_inbox
from tandem.infra.inbox import IncomingDelivery


def delivery(action: str | None = "created") -> IncomingDelivery:
    return IncomingDelivery(str(uuid.uuid4()), "issue_comment", action, json.dumps({"action": action}))


def jobs(services) -> list:
    return services.queue(queue.WEBHOOKS).get_jobs()


def test_accepting_claims_the_guid_atomically(services):
    first, other = delivery(), delivery()
    assert accept_deliveries(services, [first, first, other]) == [True, False, True]
    assert services.redis.xlen(inbox.STREAM) == 2


def test_the_relay_turns_entries_into_jobs_and_empties_the_inbox(services):
    batch = [delivery(), delivery(None)]
    accept_deliveries(services, batch)
    assert relay_inbox(services, "worker-1") == 2
    assert services.redis.xlen(inbox.STREAM) == 0
    assert [job.kwargs for job in jobs(services)] == [
        job_names.payload(job_names.PROCESS_DELIVERY, delivery_id=d.id, event=d.event, action=d.action, body=d.body)
        for d in batch
    ]
    assert [job.id for job in jobs(services)] == [f"delivery-{d.id}" for d in batch]
    assert relay_inbox(services, "worker-1") == 0


def test_entries_a_dead_relay_took_are_claimed_by_another(services):
    accepted = delivery()
    accept_deliveries(services, [accepted])
    inbox._ensure_group(services.redis)
    # A relay reads the entry, then dies before queueing its job.
    services.redis.xreadgroup(inbox.GROUP, "dead-relay", {inbox.STREAM: ">"}, count=10)
    assert relay_inbox(services, "worker-2") == 0, "not yet: the dead relay might still be working"
    assert relay_inbox(services, "worker-2", claim_idle_ms=0) == 1
    assert [job.id for job in jobs(services)] == [f"delivery-{accepted.id}"]
    assert services.redis.xpending(inbox.STREAM, inbox.GROUP)["pending"] == 0


def test_entries_accepted_before_any_relay_existed_are_relayed(services):
    accept_deliveries(services, [delivery()])
    assert services.redis.xinfo_groups(inbox.STREAM) == []
    assert relay_inbox(services, "first-ever-relay") == 1
