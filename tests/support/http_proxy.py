"""An HTTP reverse proxy on loopback in front of the GitHub emulator."""

from __future__ import annotations

from collections.abc import Callable

import httpx


class LoopbackProxy:
    """A reverse proxy on loopback in front of the emulator: strips a path prefix (GHES serves
    its API under /api/v3) and can replace an answer after the emulator has acted on the request
    (`replace(method, path) -> status or None`), as a GitHub edge failing after the effect."""

    def __init__(self, upstream: str, strip_prefix: str = "", replace: Callable[[str, str], int | None] | None = None):
        self.upstream = upstream
        self.strip_prefix = strip_prefix
        self.replace = replace
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        self.seen.append((scope["method"], path))
        if self.strip_prefix and path.startswith(self.strip_prefix):
            path = path[len(self.strip_prefix) :] or "/"
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k.lower() != b"host"]
        async with httpx.AsyncClient(base_url=self.upstream, follow_redirects=False, timeout=30) as client:
            response = await client.request(
                scope["method"], path + (f"?{query}" if query else ""), content=body, headers=headers
            )
        status, content = response.status_code, response.content
        dropped = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        out = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items() if k.lower() not in dropped
        ]
        replaced = self.replace(scope["method"], path) if self.replace else None
        if replaced is not None:
            status, content = replaced, b'{"message":"Server Error"}'
            out = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
