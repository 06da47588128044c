"""What one web process may spend on clients it has not yet authenticated, so that none can
exhaust its memory or hold its connections (`tandem serve` uses these; README: "Limits at the HTTP edge").

- Request headers: at most MAX_HEADER_BYTES, else 431 and the connection closes.
- Connections: at most MAX_CONNECTIONS open at once; more are answered 503 and closed.
- Time: a request must arrive whole (headers and body) within TANDEM_REQUEST_TIMEOUT_SECONDS of its
  first byte, and a new connection must start one within as long; else it is closed (408).
- Bodies: those being read (webhooks, tasks) hold at most BODY_BUFFER_BYTES together; a request
  that would pass it is answered 503 before its body is read.

So a process holds at most about BODY_BUFFER_BYTES + MAX_CONNECTIONS x PER_CONNECTION_BYTES
for its clients, whatever they send or withhold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tandem.infra.settings import get_settings

MAX_HEADER_BYTES = 32 * 1024  # GitHub's deliveries send under 2 KB of headers
MAX_CONNECTIONS = 256
BODY_BUFFER_BYTES = 64 * 1024 * 1024  # room for two of GitHub's largest (25 MB) deliveries
# Per connection: the header bytes, one socket read (asyncio's 256 KB) and uvicorn's body
# buffer (64 KB, after which it stops reading until the app takes the body).
PER_CONNECTION_BYTES = MAX_HEADER_BYTES + 256 * 1024 + 64 * 1024


class BodyBudget:
    """Bytes of request bodies held in memory at once, across one process's requests (all on its
    one event loop, so no lock)."""

    def __init__(self, limit: int = BODY_BUFFER_BYTES):
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class BodyRefused(Exception):
    """A body not read: too large (413), or no room for it in the budget (503)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


async def read_body(headers: Mapping[str, str], receive, budget: BodyBudget, cap: int, feed=None) -> list[bytes]:
    """The request's body as the chunks it came in, at most `cap` bytes, held within the budget
    (reserved up front for a declared length); `feed` sees each chunk as it arrives. The caller
    joins the chunks once it wants the body: not at all for a body it refuses (a growing buffer
    would be copied as it grew). Raises BodyRefused (413, or 503 when the budget is spent: the
    sender may retry later)."""
    declared = headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    if size is not None and size > cap:
        raise BodyRefused(413, f"payload over {cap // 2**20} MB")
    held = 0

    def hold(total: int) -> None:
        nonlocal held
        if total > held:
            if not budget.take(total - held):
                raise BodyRefused(503, "busy: too many request bodies in flight; send it again later")
            held = total

    chunks: list[bytes] = []
    size_read = 0
    try:
        hold(size or 0)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyRefused(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size_read += len(chunk)
            if size_read > cap:
                raise BodyRefused(413, f"payload over {cap // 2**20} MB")
            hold(size_read)
            chunks.append(chunk)
            if feed is not None:
                feed(chunk)
            if not message.get("more_body", False):
                break
    finally:
        budget.give_back(held)
    return chunks


def _refusal(status: int, reason: str) -> bytes:
    text = reason.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(text)}\r\nconnection: close\r\n\r\n"
    ).encode() + text


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the header, connection and time limits above."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_timeout = get_settings().request_timeout_seconds
        self._reading_headers = True
        self._header_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            self._refuse(503, "Service Unavailable")
            return
        self._arm()  # a connection that never sends a request is closed too

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counting = self._reading_headers
        super().data_received(data)
        # httptools keeps an unfinished header line whole: count what arrives until the headers end.
        if counting and self._reading_headers:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._refuse(431, "Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers, self._header_bytes = True, 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers = True
        self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._reading_headers:
            self._refuse(408, "Request Timeout")
        else:
            # The app has the request and answers it (or sees a disconnect); the body stops here.
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        self._reading_headers = False
        self._disarm()
        self.transport.write(_refusal(status, reason))
        self.transport.close()
