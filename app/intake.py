"""Group commit for webhook deliveries: requests that arrive while batches are being written to
Redis wait together for the next batch, so one Redis round trip accepts many deliveries.
No timer: an idle server writes a lone delivery at once, a busy one in batches, one batch in
flight at a time (written from the event loop, no thread in between). A request is answered only
after its own batch is durably queued, or failed."""

from __future__ import annotations

import asyncio

import redis.asyncio

from tandem.infra import inbox, queue
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.services import Services

MAX_BATCH = 256
# Batches written at once. While one waits for Redis the next gathers: each round trip costs a
# wake-up of Redis and of this process, so fewer, larger batches cost less CPU per delivery
# (side by side with bench/webhooks.py's client: 4 in flight took ~8-12 % more at saturation, and
# gave no steadily lower p99 at 500/s).
IN_FLIGHT = 1


class DeliveryIntake:
    def __init__(self, services: Services):
        self.services = services
        self._waiting: list[tuple[IncomingDelivery, asyncio.Future]] = []
        self._writers: set[asyncio.Task] = set()
        self._client: tuple[asyncio.AbstractEventLoop, object, redis.asyncio.Redis] | None = None

    async def queue(self, delivery: IncomingDelivery) -> bool:
        """True once in the inbox; False if the GUID already waits; raises if Redis refused it."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        if len(self._writers) < IN_FLIGHT:
            writer = asyncio.create_task(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await future

    def _redis(self) -> redis.asyncio.Redis:
        """The event loop's client to Services' Redis (a test's server runs its own loop, and may swap Redis)."""
        loop, connection = asyncio.get_running_loop(), self.services.redis
        if self._client is None or self._client[0] is not loop or self._client[1] is not connection:
            self._client = (loop, connection, queue.async_twin(connection))
        return self._client[2]

    async def close(self) -> None:
        """Hang up on Redis (at shutdown, in the loop that served)."""
        if self._client is not None and self._client[0] is asyncio.get_running_loop():
            await self._client[2].aclose()
        self._client = None

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                queued = await inbox.accept_async(self._redis(), [d for d, _ in batch])
            except Exception as exc:  # each waiting request answers 503
                for _, future in batch:
                    if not future.done():  # (a client that hung up cancelled its own)
                        future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, queued, strict=True):
                    if not future.done():
                        future.set_result(result)
