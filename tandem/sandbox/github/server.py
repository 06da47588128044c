"""The HTTP side: a small ASGI app served by uvicorn on a loopback socket, in a
background thread.

The socket is bound when the emulator is created (so ``emu.url`` is known
before ``start()``) and starts listening in ``start()``. Requests are read on
uvicorn's event loop and handled on a thread pool: handlers call ``git`` and
take locks, which must not block the loop. Injected latency is awaited on the
loop, so it costs no worker thread.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from . import web
from .core import Core, Request, Response


def bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


class AsgiApp:
    def __init__(self, core: Core, workers: int = 32):
        self.core = core
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="github-emulator")
        self.errors: list[str] = []  # tracebacks of emulator bugs (answered 500)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        request = Request(
            method=scope["method"],
            path=raw_path.decode("latin-1").split("?", 1)[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
        )
        delay = self.core.faults.delay
        if delay:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self.executor, self._dispatch, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def _dispatch(self, request: Request) -> Response:
        try:
            response = web.handle(self.core, request)
            if response is None:
                response = self.core.handle_api(request)
            return response
        except Exception:
            text = traceback.format_exc()
            self.errors.append(f"{request.method} {request.path}\n{text}")
            print(f"github-emulator: internal error on {request.method} {request.path}\n{text}", file=sys.stderr)
            body = json.dumps(
                {
                    "message": "GitHub emulator internal error (see emu.server_errors)",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "500",
                }
            )
            return Response(500, {"content-type": "application/json; charset=utf-8"}, body.encode())


class ServerThread:
    def __init__(self, app: AsgiApp, sock: socket.socket):
        self.app = app
        self.sock = sock
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="github-emulator-http", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("GitHub emulator server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("GitHub emulator server did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        if self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(timeout)
        self.thread = None
        self.app.executor.shutdown(wait=False, cancel_futures=True)
