"""The inbox: where verified webhook deliveries wait, durably, for a worker to queue their job.

The web side must answer GitHub fast, and creating an RQ job costs far more than answering (a
job is serialized, compressed and spread over several keys). So intake does the least that is
durable: one atomic Lua call per delivery that claims its GUID and appends it to a Redis stream,
a batch of them pipelined in one round trip (from the web's event loop: `accept_async`); workers
relay stream entries into RQ jobs in batches. A relay that dies mid-batch leaves its
entries pending in the stream's consumer group; another relay claims them after 15 s.
Job ids are `delivery-<GUID>`, and processing is idempotent per GUID, so a relay never loses a delivery
and a rare double relay does no harm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
import redis.asyncio
from rq import Queue
from rq.queue import EnqueueData

from tandem.infra import redis_keys

STREAM = redis_keys.INBOX
GROUP = "relay"
PENDING_TTL = 6 * 3600  # how long a waiting delivery keeps its duplicates out
CLAIM_IDLE_MS = 15_000  # a relay silent this long is taken to be dead (its batch takes milliseconds)
BATCH = 256

# KEYS: the GUID's pending key, the stream. ARGV: ttl, id, event, action, body.
_ACCEPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'event', ARGV[3], 'action', ARGV[4], 'body', ARGV[5])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class IncomingDelivery:
    """A verified delivery. The body stays the JSON text GitHub sent: never re-encoded here."""

    id: str
    event: str
    action: str | None
    body: str


def _accept_command(d: IncomingDelivery) -> tuple:
    # EVAL with the script's text, not a registered script's EVALSHA: redis-py checks that a
    # pipeline's scripts are loaded in a round trip of its own, and Redis caches an EVAL'd script.
    keys = (redis_keys.delivery_pending(d.id), STREAM)
    return ("EVAL", _ACCEPT, len(keys), *keys, PENDING_TTL, d.id, d.event, d.action or "", d.body)


def accept(connection: redis.Redis, deliveries: Sequence[IncomingDelivery]) -> list[bool]:
    """Put deliveries in the inbox, in one round trip; False for a GUID that already waits.

    Raises redis.RedisError when Redis cannot take them: they must not be acknowledged then.
    """
    with connection.pipeline(transaction=False) as pipe:
        for d in deliveries:
            pipe.execute_command(*_accept_command(d))
        return [bool(accepted) for accepted in pipe.execute()]


async def accept_async(connection: redis.asyncio.Redis, deliveries: Sequence[IncomingDelivery]) -> list[bool]:
    """`accept`, from an event loop."""
    async with connection.pipeline(transaction=False) as pipe:
        for d in deliveries:
            pipe.execute_command(*_accept_command(d))
        return [bool(accepted) for accepted in await pipe.execute()]


def _ensure_group(connection: redis.Redis) -> None:
    try:
        # From the stream's start: entries added before any relay existed are relayed too.
        connection.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def relay(
    connection: redis.Redis,
    queue: Queue,
    make_job: Callable[[IncomingDelivery], EnqueueData],
    consumer: str,
    block_ms: int | None = None,
    claim_idle_ms: int = CLAIM_IDLE_MS,
) -> int:
    """Move one batch from the inbox into RQ jobs; returns how many were moved."""
    _ensure_group(connection)
    _next, claimed, _deleted = connection.xautoclaim(STREAM, GROUP, consumer, claim_idle_ms, "0-0", count=BATCH)
    entries = list(claimed)
    if len(entries) < BATCH:
        answer = connection.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=BATCH - len(entries), block=block_ms)
        # RESP2, this connection's protocol, answers [[stream, entries]]; redis-py's type admits RESP3's mapping too.
        for _stream, fresh in answer.items() if isinstance(answer, dict) else answer or []:
            entries += fresh
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]
    if not entries:
        return 0
    jobs = [
        make_job(
            IncomingDelivery(
                fields[b"id"].decode(),
                fields[b"event"].decode(),
                fields[b"action"].decode() or None,
                fields[b"body"].decode(),
            )
        )
        for _entry_id, fields in entries
    ]
    ids = [entry_id for entry_id, _fields in entries]
    # One transaction: the jobs exist exactly when their entries are gone from the inbox.
    with connection.pipeline(transaction=True) as pipe:
        queue.enqueue_many(jobs, pipeline=pipe)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
    return len(jobs)
