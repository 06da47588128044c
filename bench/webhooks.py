"""Webhook intake benchmark: signed real `issue_comment` deliveries against a running `tandem serve`.

Starts `tandem serve` (SQLite in a temporary directory, Redis database 14 by default) unless
--url is given, then, from other processes:
  1. a fixed-rate phase from this process (open loop: latency is measured from each request's
     scheduled send time, so a stalled server cannot hide its queueing) at --rate deliveries/s;
  2. a saturation phase (closed loop, --connections at once) for the sustained maximum, with
     wrk when it is installed (apt-get install wrk: a Python client saturates before the server).
Every delivery has its own GUID and must be answered 202 "queued"; the script checks that the
inbox holds exactly one accepted delivery per delivery sent (no worker runs meanwhile).

    .venv/bin/python bench/webhooks.py [--rate 500] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).parents[1]
PAYLOAD = ROOT / "tests" / "fixtures" / "webhook-payloads" / "issue_comment" / "created.payload.json"
SECRET = b"bench-webhook-secret"


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must be cheaper than the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


def delivery_headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
        "User-Agent": "GitHub-Hookshot/bench",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fixed_rate(host: str, port: int, body: bytes, rate: float, seconds: float, connections: int):
    """Open loop: request i is due at start + i/rate, whichever connection is free takes it."""
    total = int(rate * seconds)
    due = asyncio.Queue()
    latencies, failures = [], []
    start = time.perf_counter() + 0.2

    async def client():
        connection = Connection(host, port)
        await connection.open()
        while (scheduled := await due.get()) is not None:
            status, text = await connection.post("/webhooks/github", body, delivery_headers(body))
            latencies.append(time.perf_counter() - scheduled)
            if status != 202 or b'"queued"' not in text:
                failures.append((status, text[:200]))

    workers = [asyncio.create_task(client()) for _ in range(connections)]
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(scheduled)
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    return total, elapsed, latencies, failures


async def saturate(host: str, port: int, body: bytes, seconds: float, connections: int):
    """Closed loop: each connection sends its next delivery as soon as the last is answered."""
    latencies, failures = [], []
    stop = time.perf_counter() + seconds

    async def client():
        connection = Connection(host, port)
        await connection.open()
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status, text = await connection.post("/webhooks/github", body, delivery_headers(body))
            latencies.append(time.perf_counter() - sent)
            if status != 202 or b'"queued"' not in text:
                failures.append((status, text[:200]))

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return len(latencies), time.perf_counter() - began, latencies, failures


WRK_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  local f = io.open("{payload}", "rb")
  body = f:read("*all")
  f:close()
end
request = function()
  counter = counter + 1
  local headers = {{}}
  headers["Content-Type"] = "application/json"
  headers["X-GitHub-Event"] = "issue_comment"
  headers["X-GitHub-Delivery"] = string.format("%08d-0000-4000-8000-%012d", tid, counter)
  headers["X-Hub-Signature-256"] = "{signature}"
  return wrk.format("POST", "/webhooks/github", headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %f %f %f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def saturate_with_wrk(url: str, body: bytes, seconds: float, connections: int, directory: str):
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    script = Path(directory) / "deliveries.lua"
    script.write_text(WRK_SCRIPT.format(payload=PAYLOAD, signature=signature))
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK "))
    requests, elapsed, p50, p99, errors = line.split()[1:]
    return int(requests), float(elapsed), float(p50), float(p99), int(errors)


def report(name: str, count: int, elapsed: float, latencies: list[float], failures: list) -> None:
    ms = [latency * 1000 for latency in latencies]
    print(
        f"{name:<12} {count:>7} deliveries in {elapsed:5.1f} s = {count / elapsed:8.0f}/s   "
        f"p50 {statistics.median(ms):6.2f} ms   p99 {percentile(ms, 0.99):6.2f} ms   "
        f"max {max(ms):7.2f} ms   failed {len(failures)}"
    )
    if failures:
        print("  first failure:", failures[0])


def start_server(port: int, workers: int, redis_url: str, directory: str) -> subprocess.Popen:
    env = os.environ | {
        "TANDEM_WEBHOOK_SECRET": SECRET.decode(),
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_DATABASE_URL": f"sqlite:///{directory}/bench.db",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
    tandem = str(Path(sys.executable).with_name("tandem"))
    subprocess.run([tandem, "db", "upgrade"], env=env, cwd=directory, check=True, capture_output=True)
    server = subprocess.Popen(
        [tandem, "serve", "--port", str(port), "--workers", str(workers)], env=env, cwd=directory
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("tandem serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="web workers of the server started here")
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    args = parser.parse_args()

    connection = redis.Redis.from_url(args.redis_url)
    connection.flushdb()
    body = PAYLOAD.read_bytes()
    server = None
    with tempfile.TemporaryDirectory() as directory:
        if args.url:
            host, port = args.url.removeprefix("http://").split(":")
            port = int(port)
        else:
            host, port = "127.0.0.1", 8765
            server = start_server(port, args.workers, args.redis_url, directory)
        try:
            print(f"tandem serve --workers {args.workers}; body {len(body)} bytes (issue_comment.created)")
            count, elapsed, latencies, failures = asyncio.run(
                fixed_rate(host, port, body, args.rate, args.seconds, args.connections)
            )
            report(f"{args.rate:.0f}/s", count, elapsed, latencies, failures)
            accepted_before = connection.xlen("tandem:inbox")
            if shutil.which("wrk"):
                count2, elapsed, p50, p99, errors = saturate_with_wrk(
                    f"http://{host}:{port}", body, args.seconds, args.connections * 2, directory
                )
                print(
                    f"{'saturation':<12} {count2:>7} deliveries in {elapsed:5.1f} s = {count2 / elapsed:8.0f}/s   "
                    f"p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (wrk, {args.connections * 2} connections)   "
                    f"failed {errors}"
                )
            else:
                count2, elapsed, latencies, failures = asyncio.run(
                    saturate(host, port, body, args.seconds, args.connections)
                )
                report("saturation", count2, elapsed, latencies, failures)
            accepted = connection.xlen("tandem:inbox")
            # wrk counts the requests it saw answered; those in flight when it stopped were accepted too.
            print(f"answered 202: {count + count2}; in the inbox: {accepted} (after phase 1: {accepted_before} of {count})")
            if accepted_before != count or accepted < count + count2:
                raise SystemExit("a delivery answered 202 is missing from the inbox")
        finally:
            if server:
                server.terminate()
                server.wait(timeout=10)
            connection.flushdb()


if __name__ == "__main__":
    main()
