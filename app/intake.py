"""Group commit for webhook deliveries: requests that arrive while a batch is being written to
Redis wait together for the next batch, so one Redis round trip accepts many deliveries.
No timer: an idle server writes a lone delivery at once, a busy one in batches. A request is
answered only after its own batch is durably queued, or failed."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from tandem.infra.delivery_queue import accept_deliveries
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.services import Services

MAX_BATCH = 256


class DeliveryIntake:
    def __init__(self, services: Services):
        self.services = services
        self._waiting: list[tuple[IncomingDelivery, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def queue(self, delivery: IncomingDelivery) -> bool:
        """True once in the inbox; False if the GUID already waits; raises if Redis refused it."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                queued = await run_in_threadpool(accept_deliveries, self.services, [d for d, _ in batch])
            except Exception as exc:  # each waiting request answers 503
                for _, future in batch:
                    if not future.done():  # (a client that hung up cancelled its own)
                        future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, queued, strict=True):
                    if not future.done():
                        future.set_result(result)
