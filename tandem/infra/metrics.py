"""Prometheus metrics, scraped at GET /metrics (app.metrics_api).

Counters and histograms are kept by the process that counts them. With several processes (web
workers, `tandem worker`s), set PROMETHEUS_MULTIPROC_DIR to a directory they all share, empty
when they start: each process writes its own file there and a scrape of any web process adds
them all up (prometheus-client's multiprocess mode, chosen from that variable when the first
metric is made, so it must be in the environment, not in .env).

What is in Redis (the inbox, the queues) is read when scraped (RedisCollector): one pipelined
round trip, nothing kept in between.

Judgments, pairs and rounds are counted when their transaction commits (count_on_commit), so a
rolled-back delivery counts nothing, and a redelivered one nothing twice.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlalchemy.orm import Session

from tandem.infra import inbox, queue

# Whether prometheus-client counts in files, as it decided on its import, just above.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Made on first use (module __getattr__), not on import: in multiprocess mode a metric without
# labels writes a file at once, and a healthcheck's process every 15 s would leave one each.
_DEFINITIONS = {
    "DELIVERIES": lambda: Counter(
        "tandem_webhook_deliveries",
        "Webhook deliveries answered at intake, by event and outcome "
        "(accepted, duplicate: already waiting, ignored: not an event Tandem handles, refused: 4xx/5xx)",
        ["event", "outcome"],
    ),
    "DELIVERIES_PROCESSED": lambda: Counter(
        "tandem_deliveries_processed",
        "Delivery jobs that ended, by event and outcome (processed, duplicate, unprocessable, failed: parked)",
        ["event", "outcome"],
    ),
    "JOB_SECONDS": lambda: Histogram(
        "tandem_job_duration_seconds",
        "How long a job ran, by job function (failed tries included)",
        ["function"],
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    ),
    "JOB_FAILURES": lambda: Counter("tandem_job_failures", "Job tries that raised, by job function", ["function"]),
    "JOB_RESCHEDULES": lambda: Counter(
        "tandem_job_reschedules",
        "Jobs queued again for later without spending a retry, by job function and reason (rate_limit, outage)",
        ["function", "reason"],
    ),
    "RATE_LIMIT_WAITS": lambda: Counter(
        "tandem_github_rate_limit_waits",
        "GitHub said wait: slept through in place, or the job rescheduled",
        ["how"],
    ),
    "WRITE_BUDGET_WAIT_SECONDS": lambda: Histogram(
        "tandem_write_budget_wait_seconds",
        "Time a write to GitHub slept for its slot in the installation's budget",
        buckets=(0.1, 0.5, 1, 2, 5, 10, 30),
    ),
    "GITHUB_REQUESTS": lambda: Counter(
        "tandem_github_requests", "Requests to GitHub's API, by method and status", ["method", "status"]
    ),
    "JUDGMENTS": lambda: Counter("tandem_judgments_recorded", "Judgments recorded (each vote, edit and re-vote)"),
    "PAIRS_OPENED": lambda: Counter("tandem_pairs_opened", "Pairs whose two PRs were opened"),
    "ROUNDS_OPENED": lambda: Counter(
        "tandem_rounds_opened", "Rounds opened for voting (a pair's first round included)"
    ),
}
_lock = threading.Lock()


def __getattr__(name: str):
    if name not in _DEFINITIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:  # (two threads must not register one metric twice)
        if name not in globals():
            globals()[name] = _DEFINITIONS[name]()
    return globals()[name]


_PENDING = "tandem_metrics_pending"


def count_on_commit(session: Session, counter: Counter) -> None:
    """Count one on `counter` once the session's transaction commits."""
    session.info.setdefault(_PENDING, []).append(counter)


@event.listens_for(Session, "after_commit")
def _counted(session: Session) -> None:
    for counter in session.info.pop(_PENDING, []):
        counter.inc()


@event.listens_for(Session, "after_rollback")
def _dropped(session: Session) -> None:
    session.info.pop(_PENDING, None)


class RedisCollector:
    """The inbox and the queues, as they are when scraped."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def collect(self):
        queues = [queue.queue(name, self.connection) for name in queue.ALL]
        states = ("queued", "scheduled", "started", "failed")
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.xlen(inbox.STREAM)
                pipe.xrange(inbox.STREAM, count=1)  # the oldest delivery still waiting for its job
                for q in queues:
                    pipe.llen(q.key)
                    for registry in (q.scheduled_job_registry, q.started_job_registry, q.failed_job_registry):
                        pipe.zcard(registry.key)
                waiting, oldest, *counts = pipe.execute()
        except redis.RedisError:  # the process's own counts are still worth a scrape
            yield GaugeMetricFamily("tandem_redis_up", "Whether Redis answered the scrape", 0)
            return
        yield GaugeMetricFamily("tandem_redis_up", "Whether Redis answered the scrape", 1)
        yield GaugeMetricFamily("tandem_inbox_deliveries", "Accepted deliveries not yet turned into jobs", waiting)
        lag = max(time.time() - int(oldest[0][0].split(b"-")[0]) / 1000, 0.0) if oldest else 0.0
        yield GaugeMetricFamily(
            "tandem_inbox_lag_seconds", "Age of the oldest delivery waiting in the inbox (0: none waits)", lag
        )
        depth = GaugeMetricFamily("tandem_queue_jobs", "Jobs in each queue and registry", labels=["queue", "state"])
        for index, q in enumerate(queues):
            for offset, state in enumerate(states):
                depth.add_metric([q.name, state], counts[index * len(states) + offset])
        yield depth


class _Joined:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def share_between_processes() -> None:
    """For `tandem serve --workers N`: without a directory of their own, the web processes share
    a fresh one, so that a scrape, whichever process answers it, counts them all (the processes
    are started after this, and read it from the environment)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tandem-metrics-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)


def serve(connection: redis.Redis, host: str, port: int) -> ThreadingHTTPServer:
    """Answer GET /metrics on host:port from a thread of this process: for `tandem worker
    --metrics-port` on a host with no web process to scrape. Returns the running server."""

    class Scrape(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body, content_type = exposition(connection)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass  # a scrape every 15 s is not worth a log line

    server = ThreadingHTTPServer((host, port), Scrape)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def exposition(connection: redis.Redis) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    if MULTIPROCESS:
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        for name in _DEFINITIONS:  # every series shows, at 0 until counted
            __getattr__(name)
        counted = REGISTRY
    return generate_latest(_Joined(counted, RedisCollector(connection))), CONTENT_TYPE_LATEST
