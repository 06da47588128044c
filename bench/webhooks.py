"""Webhook intake benchmark: signed real `issue_comment` deliveries against a running `tandem serve`,
and, with --probot, against Probot's no-op app for comparison.

Starts `tandem serve` (SQLite in a temporary directory, Redis database 14 by default) unless
--url is given, then, from other processes:
  1. a fixed-rate phase from this process (open loop: latency is measured from each request's
     scheduled send time, so a stalled server cannot hide its queueing) at --rate deliveries/s;
  2. a saturation phase (closed loop, --connections at once) for the sustained maximum, with
     wrk when it is installed (apt-get install wrk: a Python client saturates before the server).
Every delivery has its own GUID and must be answered 202 "queued"; the script checks that the
inbox holds exactly one accepted delivery per delivery sent (no worker runs meanwhile).

--probot compares with the usual way of writing a GitHub App: Probot 14 (installed once with npm
into ~/.cache/tandem-bench, needs node and npm) running an app whose `issue_comment.created`
handler does nothing, so Probot answers 200 once the signature is checked and the handler ran,
keeping nothing, where Tandem answers only once the delivery is durably in Redis. The two servers
take turns over --rounds rounds, with the same payload and load generator, and the medians'
ratios are printed last (Tandem/Probot: > 1 is Tandem faster for deliveries/s, slower for p99).
Each phase also tells the server's CPU time per delivery (Tandem's counts its Redis's too): on a
machine others share, it and the rounds' ratios vary less than rates and latencies.

--server granian (repeatable: `--server uvicorn --server granian`) runs the same app under granian,
whose HTTP parsing is in Rust (`pip install granian` into the venv first), to compare with
`tandem serve`'s uvicorn in one run: each takes its turn against Probot.

    .venv/bin/python bench/webhooks.py --redis-url redis://127.0.0.1:6379/14 [--rate 500] [--seconds 10]
        [--workers 2] [--probot --rounds 3] [--server uvicorn --server granian]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).parents[1]
PAYLOAD = ROOT / "tests" / "fixtures" / "webhook-payloads" / "issue_comment" / "created.payload.json"
SECRET = b"bench-webhook-secret"
PROBOT = "probot@14"
TANDEM_ANSWER = ("/webhooks/github", 202, b'"queued"')  # path, status, marker
PROBOT_APP = """export default (app) => {
  app.on("issue_comment.created", async () => {});
};
"""


@dataclass(frozen=True)
class Server:
    """Where deliveries go, and how a delivery taken in is answered."""

    name: str
    host: str
    port: int
    path: str
    status: int
    marker: bytes  # in the answer's body
    pid: int | None  # a process started here: its CPU time (and its children's) is counted
    redis: redis.Redis | None = None  # the Redis whose CPU time is counted too (Tandem's inbox)

    def took(self, status: int, text: bytes) -> bool:
        return status == self.status and self.marker in text


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

    def close(self) -> None:
        self.writer.close()


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


def cpu_seconds(server: Server) -> float | None:
    """CPU time used so far by the server's processes (and its Redis), from /proc and INFO."""
    if server.pid is None:
        return None
    total, pids = 0.0, [server.pid]
    while pids:
        pid = pids.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    if server.redis is not None:
        info = server.redis.info("cpu")
        total += info["used_cpu_user"] + info["used_cpu_sys"]
    return total


@dataclass
class Phase:
    count: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: list
    cpu_ms: float | None = None  # the server's CPU time per delivery

    @classmethod
    def of(cls, count: int, elapsed: float, latencies: list[float], failures: list) -> Phase:
        ms = [latency * 1000 for latency in latencies]
        return cls(count, elapsed, statistics.median(ms), percentile(ms, 0.99), max(ms), failures)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed


async def fixed_rate(server: Server, body: bytes, rate: float, seconds: float, connections: int) -> Phase:
    """Open loop: request i is due at start + i/rate, whichever connection is free takes it."""
    total = int(rate * seconds)
    due = asyncio.Queue()
    latencies, failures = [], []
    start = time.perf_counter() + 0.2

    async def client():
        connection = Connection(server.host, server.port)
        await connection.open()
        while (scheduled := await due.get()) is not None:
            status, text = await connection.post(server.path, body, delivery_headers(body))
            latencies.append(time.perf_counter() - scheduled)
            if not server.took(status, text):
                failures.append((status, text[:200]))
        connection.close()

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
    return Phase.of(total, time.perf_counter() - start, latencies, failures)


async def saturate(server: Server, body: bytes, seconds: float, connections: int) -> Phase:
    """Closed loop: each connection sends its next delivery as soon as the last is answered."""
    latencies, failures = [], []
    stop = time.perf_counter() + seconds

    async def client():
        connection = Connection(server.host, server.port)
        await connection.open()
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status, text = await connection.post(server.path, body, delivery_headers(body))
            latencies.append(time.perf_counter() - sent)
            if not server.took(status, text):
                failures.append((status, text[:200]))
        connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return Phase.of(len(latencies), time.perf_counter() - began, latencies, failures)


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
  return wrk.format("POST", "{path}", headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %f %f %f %f %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


def saturate_with_wrk(server: Server, body: bytes, seconds: float, connections: int, directory: str) -> Phase:
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    script = Path(directory) / "deliveries.lua"
    script.write_text(WRK_SCRIPT.format(payload=PAYLOAD, signature=signature, path=server.path))
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "-s",
            str(script),
            f"http://{server.host}:{server.port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK "))
    requests, elapsed, p50, p99, most, errors = line.split()[1:]
    return Phase(int(requests), float(elapsed), float(p50), float(p99), float(most), [None] * int(errors))


def report(name: str, phase: Phase) -> None:
    print(
        f"  {name:<22} {phase.count:>7} deliveries in {phase.elapsed:5.1f} s = {phase.rate:8.0f}/s   "
        f"p50 {phase.p50_ms:6.2f} ms   p99 {phase.p99_ms:6.2f} ms   max {phase.max_ms:7.2f} ms   "
        f"failed {len(phase.failures)}" + (f"   server CPU {phase.cpu_ms:.2f} ms/delivery" if phase.cpu_ms else "")
    )
    if phase.failures:
        print("    first failure:", phase.failures[0])


def wait_until_listening(process: subprocess.Popen, port: int, path: str, what: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except urllib.error.HTTPError:  # an answer, whichever: it listens
            return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{what} did not start")


def start_tandem(http_server: str, port: int, workers: int, redis_url: str, directory: str) -> subprocess.Popen:
    env = os.environ | {
        "TANDEM_WEBHOOK_SECRET": SECRET.decode(),
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_DATABASE_URL": f"sqlite:///{directory}/bench.db",
        "TANDEM_LOG_LEVEL": "WARNING",
    }
    tandem = str(Path(sys.executable).with_name("tandem"))
    subprocess.run([tandem, "db", "upgrade"], env=env, cwd=directory, check=True, capture_output=True)
    if http_server == "uvicorn":
        command = [tandem, "serve", "--port", str(port), "--workers", str(workers)]
    else:  # the same app under granian (Rust's HTTP parsing), for comparison
        if workers > 1:
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=directory)
        granian = Path(sys.executable).with_name("granian")
        if not granian.exists():
            raise SystemExit(f"--server granian: install it first ({Path(sys.executable).parent}/pip install granian)")
        command = [str(granian), "--interface", "asgi", "--factory"]
        command += ["--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--no-ws"]
        command += ["--log-level", "warning", "app.main:app_from_environment"]
    server = subprocess.Popen(command, env=env, cwd=directory)
    wait_until_listening(server, port, "/healthz", f"tandem under {http_server}")
    return server


def probot_install() -> Path:
    """Probot from the npm registry, once, into a cache folder (never into this repository)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tandem-bench" / PROBOT.replace("@", "-")
    if not (folder / "node_modules" / ".bin" / "probot").exists():
        if not shutil.which("npm"):
            raise SystemExit("--probot needs node and npm")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
        print(f"npm install {PROBOT} into {folder}", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", PROBOT], cwd=folder, check=True
        )
    (folder / "app.js").write_text(PROBOT_APP)
    return folder


def start_probot(folder: Path, port: int) -> subprocess.Popen:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # never used: the app calls no API
    env = os.environ | {
        "APP_ID": "1",
        "PRIVATE_KEY": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
        "WEBHOOK_SECRET": SECRET.decode(),
        "PORT": str(port),
        "LOG_LEVEL": "warn",
        "NODE_ENV": "production",
    }
    server = subprocess.Popen(
        [str(folder / "node_modules" / ".bin" / "probot"), "run", "./app.js"], env=env, cwd=folder
    )
    wait_until_listening(server, port, "/", "probot")
    return server


def per_delivery(server: Server, before: float | None, count: int) -> tuple[float | None, float | None]:
    """(CPU ms per delivery since `before`, the CPU time now)."""
    now = cpu_seconds(server)
    return (None if now is None else (now - before) * 1000 / count), now


def measure(server: Server, body: bytes, args, directory: str, inbox: redis.Redis | None) -> tuple[Phase, Phase]:
    """One round against one server: the fixed rate, then saturation; for Tandem, checks the inbox."""
    print(server.name)
    if inbox is not None:
        inbox.flushdb()
    before = cpu_seconds(server)
    fixed = asyncio.run(fixed_rate(server, body, args.rate, args.seconds, args.connections))
    fixed.cpu_ms, before = per_delivery(server, before, fixed.count)
    report(f"{args.rate:.0f}/s (open loop)", fixed)
    accepted_before = inbox.xlen("tandem:inbox") if inbox is not None else None
    if shutil.which("wrk"):
        saturated_connections = args.connections * 2
        saturated = saturate_with_wrk(server, body, args.seconds, saturated_connections, directory)
    else:
        saturated_connections = args.connections
        saturated = asyncio.run(saturate(server, body, args.seconds, args.connections))
    saturated.cpu_ms, _ = per_delivery(server, before, saturated.count)
    report(f"saturation ({'wrk, ' if shutil.which('wrk') else ''}{saturated_connections})", saturated)
    if inbox is not None:
        accepted = inbox.xlen("tandem:inbox")
        # wrk counts the requests it saw answered; those in flight when it stopped were accepted too.
        answered = fixed.count + saturated.count
        print(
            f"  answered 202: {answered}; in the inbox: {accepted} (after phase 1: {accepted_before} of {fixed.count})"
        )
        if accepted_before != fixed.count or accepted < answered:
            raise SystemExit("a delivery answered 202 is missing from the inbox")
    return fixed, saturated


def compare(results: dict[str, list[tuple[Phase, Phase]]], rate: float) -> None:
    """Medians over the rounds, and the median of each round's ratio (the servers of a round ran
    back to back, so a round's ratio is the less disturbed by what else the machine was doing)."""
    figures = {"saturation deliveries/s": lambda _f, s: s.rate, f"{rate:.0f}/s p99 ms": lambda f, _s: f.p99_ms}
    if results["probot"][0][1].cpu_ms is not None:
        figures["saturation CPU ms/delivery"] = lambda _f, s: s.cpu_ms
    rounds = len(results["probot"])
    for tandem_name in (name for name in results if name != "probot"):
        print(f"{rounds} rounds, medians: {tandem_name:>20}     probot   {'/probot':>13}   of rounds' ratios")
        for name, figure in figures.items():
            tandem, probot = ([figure(*phases) for phases in results[server]] for server in (tandem_name, "probot"))
            paired = statistics.median(t / p for t, p in zip(tandem, probot, strict=True))
            t, p = statistics.median(tandem), statistics.median(probot)
            print(f"  {name:<27} {t:9.2f}  {p:9.2f}   {t / p:12.2f}x   {paired:16.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="web workers of the server started here")
    parser.add_argument(
        "--server",
        action="append",
        choices=["uvicorn", "granian"],
        help="HTTP server to run Tandem's app under, `tandem serve`'s uvicorn by default; repeat to compare",
    )
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--probot", action="store_true", help=f"compare with {PROBOT}'s no-op app, turn about")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    connection = redis.Redis.from_url(args.redis_url)
    body = PAYLOAD.read_bytes()
    processes = []
    servers = []
    with tempfile.TemporaryDirectory() as directory:
        if args.url:
            host, port = args.url.removeprefix("http://").split(":")
            servers.append((Server("tandem", host, int(port), *TANDEM_ANSWER, None, connection), connection))
        for i, http_server in enumerate(() if args.url else args.server or ["uvicorn"]):
            processes.append(start_tandem(http_server, 8765 + 2 * i, args.workers, args.redis_url, directory))
            name = "tandem" if http_server == "uvicorn" else f"tandem-{http_server}"
            tandem = Server(name, "127.0.0.1", 8765 + 2 * i, *TANDEM_ANSWER, processes[-1].pid, connection)
            servers.append((tandem, connection))
        if args.probot:
            processes.append(start_probot(probot_install(), 8764))
            probot = Server("probot", "127.0.0.1", 8764, "/api/github/webhooks", 200, b"ok", processes[-1].pid)
            servers.append((probot, None))
        print(
            f"{', '.join(server.name for server, _ in servers)} with {args.workers} web workers; "
            f"probot: {'run ' + PROBOT if args.probot else 'not run'}; "
            f"body {len(body)} bytes (issue_comment.created)"
        )
        results = {server.name: [] for server, _inbox in servers}
        try:
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}")
                # Turn about, and the other first every other round: neither always runs on a warmer machine.
                for server, inbox in servers if round_ % 2 == 0 else servers[::-1]:
                    results[server.name].append(measure(server, body, args, directory, inbox))
            if args.probot:
                compare(results, args.rate)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
            connection.flushdb()


if __name__ == "__main__":
    main()
