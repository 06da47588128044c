"""Hostile clients against a real `tandem serve`: oversized, unsigned, endless and silent
requests must not raise the server's memory past the bound app.limits states, nor hold its
connections open. The server's peak resident memory is read from /proc (VmHWM), and printed."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app import limits
from tests.support.cli import TANDEM

MB = 2**20
TIMEOUT = 2  # the impatient server's TANDEM_REQUEST_TIMEOUT_SECONDS
GUARD = 60  # a client gives up after this long: only a broken server gets near it
FORGED = "sha256=" + "0" * 64  # well formed, so the server reads the body before refusing it


class Server:
    def __init__(self, process: subprocess.Popen, port: int):
        self.process, self.port = process, port
        self.url = f"http://127.0.0.1:{port}"

    def memory(self, field: str) -> int:
        """VmRSS (now) or VmHWM (the peak so far) of the server process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=GUARD)


@pytest.fixture
def server(tmp_path, redis_url) -> Iterator[Server]:
    """`tandem serve`, with a request timeout no test reaches unless it means to."""
    yield from serve(tmp_path, redis_url, GUARD)


@pytest.fixture
def impatient_server(tmp_path, redis_url) -> Iterator[Server]:
    yield from serve(tmp_path, redis_url, TIMEOUT)


def serve(tmp_path: Path, redis_url: str, request_timeout: float) -> Iterator[Server]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_WEBHOOK_SECRET": "edge-test-secret",
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_DATABASE_URL": f"sqlite:///{tmp_path / 'tandem.db'}",
        "TANDEM_REQUEST_TIMEOUT_SECONDS": str(request_timeout),
        "TANDEM_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [TANDEM, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(transport=httpx.HTTPTransport(retries=50)) as client:
            for _ in range(100):
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.TransportError:
                    if process.poll() is not None:
                        raise AssertionError(process.stderr.read().decode()) from None
                    threading.Event().wait(0.1)  # the server is still starting
        yield Server(process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)


def answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the guard runs out)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and b"connection: close" not in received.lower():
                break  # a complete keep-alive answer
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def status(reply: bytes) -> int | None:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def send_all(connection: socket.socket, *parts: bytes) -> None:
    """Send, stopping quietly when the server has closed the connection (as it should)."""
    try:
        for part in parts:
            connection.sendall(part)
    except (BrokenPipeError, ConnectionResetError):
        pass


def at_once(count: int, client: Callable[[], bytes]) -> list[bytes]:
    replies: list[bytes] = [b""] * count

    def run(index: int) -> None:
        replies[index] = client()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def report(server: Server, baseline: int, connections: int, what: str) -> None:
    peak = server.memory("VmHWM")
    bound = limits.BODY_BUFFER_BYTES + connections * limits.PER_CONNECTION_BYTES + ALLOCATOR_SLACK
    print(
        f"\n{what}: server RSS {baseline / MB:.0f} MB before, peak {peak / MB:.0f} MB "
        f"(+{(peak - baseline) / MB:.0f} MB; bound +{bound / MB:.0f} MB)"
    )
    assert peak - baseline <= bound, f"{what}: peak +{(peak - baseline) / MB:.0f} MB over the bound"


# The interpreter's and the allocator's own overhead on top of the bytes the limits count.
ALLOCATOR_SLACK = 16 * MB


def settled_baseline(server: Server) -> int:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(20):  # warm the routes, so that the baseline holds their code and caches
            client.post("/webhooks/github", content=b"{}", headers={"X-Hub-Signature-256": FORGED})
            client.get("/api/tasks/1")
    return server.memory("VmRSS")


def test_concurrent_oversized_unsigned_bodies_stay_within_the_bound(server):
    """20 clients at once, each sending 24 MB with a forged signature (which the server must read
    whole to check): at most the body budget of it is held, the rest is refused unread."""
    baseline = settled_baseline(server)
    body = b"x" * (24 * MB)

    forged = f"X-Hub-Signature-256: {FORGED}\r\n"
    declared = f"Content-Length: {len(body)}\r\n"

    replies = at_once(20, lambda: post_webhook(server, forged + declared, body))
    report(server, baseline, 20, "20 x 24 MB forged-signature bodies")
    statuses = sorted(status(reply) for reply in replies)
    assert set(statuses) <= {401, 503}, statuses
    assert 401 in statuses, "some bodies were read and their signature checked"
    assert 503 in statuses, "the rest were refused without being read"

    # No declared length: the server holds the body's bytes against the budget as they come.
    chunk = b"%x\r\n" % MB + body[:MB] + b"\r\n"
    chunked_body = [*[chunk] * 24, b"0\r\n\r\n"]
    chunked = at_once(20, lambda: post_webhook(server, forged + "Transfer-Encoding: chunked\r\n", *chunked_body))
    report(server, baseline, 20, "then 20 x 24 MB chunked forged-signature bodies")
    statuses = sorted(status(reply) for reply in chunked)
    assert set(statuses) <= {401, 503} and 503 in statuses, statuses

    unsigned = at_once(20, lambda: post_webhook(server, declared, body))
    report(server, baseline, 20, "then 20 x 24 MB unsigned bodies")
    assert {status(reply) for reply in unsigned} == {401}, "no signature: refused before the body is read"


def post_webhook(server: Server, headers: str, *body: bytes) -> bytes:
    with server.connect() as connection:
        send_all(connection, f"POST /webhooks/github HTTP/1.1\r\nHost: tandem\r\n{headers}\r\n".encode(), *body)
        return answer(connection)


def test_endless_header_lines_are_cut_off_within_the_bound(server):
    """10 clients each sending a 50 MB header line that never ends."""
    baseline = settled_baseline(server)
    line = b"a" * (50 * MB)

    def client() -> bytes:
        with server.connect() as connection:
            send_all(connection, b"GET /healthz HTTP/1.1\r\nHost: tandem\r\nX-Endless: ", line)
            return answer(connection)

    replies = at_once(10, client)
    # The server answers 431 and closes; a client still sending may see only the reset.
    assert {status(reply) for reply in replies} <= {431, None}, [reply[:40] for reply in replies]
    report(server, baseline, 10, "10 x 50 MB unfinished header lines")

    fits = httpx.get(f"{server.url}/healthz", headers={"X-Large": "b" * (limits.MAX_HEADER_BYTES // 2)})
    assert fits.status_code == 200, "headers within the limit are served"


def test_slow_and_silent_clients_are_cut_off(impatient_server):
    """A client that stops halfway through its headers, one that stops halfway through its body,
    and one that never sends a byte: each is closed after the request timeout, not kept."""
    server = impatient_server
    baseline = settled_baseline(server)

    def half_headers() -> bytes:
        with server.connect() as connection:
            send_all(connection, b"POST /webhooks/github HTTP/1.1\r\nHost: tandem\r\nX-Hub-Sig")
            return answer(connection)

    def half_body() -> bytes:
        return post_webhook(server, f"X-Hub-Signature-256: {FORGED}\r\nContent-Length: 1000\r\n", b"{" * 10)

    def silent() -> bytes:
        with server.connect() as connection:
            return answer(connection)

    for client, expected in ((half_headers, {408}), (half_body, {None}), (silent, {408})):
        replies = at_once(30, client)
        # Each connection ended (the guard would have left it open, with no reply, after a minute).
        assert {status(reply) for reply in replies} == expected, (client.__name__, replies[:2])
    report(server, baseline, 30, "30 x 3 slow or silent clients")

    assert httpx.get(f"{server.url}/healthz").status_code == 200, "and the server still serves"


def test_connections_past_the_limit_are_refused(server):
    baseline = settled_baseline(server)
    held = [server.connect() for _ in range(limits.MAX_CONNECTIONS)]
    try:
        with server.connect() as extra:
            assert status(answer(extra)) == 503
    finally:
        for connection in held:
            connection.close()
    report(server, baseline, limits.MAX_CONNECTIONS, f"{limits.MAX_CONNECTIONS} idle connections")
