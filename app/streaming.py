"""Responses streamed from a sync iterator (a generator holding a transaction) that close it when
the response ends, however it ends.

Starlette reads a sync iterator in the thread pool and, when the client goes away, leaves it
unclosed: the generator, its session's connection and an export's reading thread
(tandem.infra.snapshot) with its snapshot stayed until a collection of the garbage found them,
and were then closed on whatever thread ran it (the event loop's, or the reading thread itself).
"""

from __future__ import annotations

from collections.abc import Generator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingStreamingResponse(StreamingResponse):
    def __init__(self, content: Generator[bytes, None, None], **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._generator = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Nothing runs the generator by now (a step in the thread pool is waited for, not
            # cancelled); it is closed in the thread pool, off the event loop, even when cancelled.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._generator.close)
