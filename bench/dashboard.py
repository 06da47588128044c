"""The dashboard's server time per page on a synthetic PostgreSQL database.

Builds `--judgments N` current votes over 20 models (bench/stats.py's builder:
tests/stats_synthetic.py), then requests every page in process (the ASGI app, no network) with
an API token of the research role, three times over, printing per page the first request's time
and the median of the next `--repeat`:

- cold: no figures computed yet (the pages queue their jobs and say the figures are being computed);
- warm: the queued jobs have run (their durations are printed), the figures are read back;
- stale: a vote (its command version) arrived since, the pages show the figures before, as of
  when, and queue their jobs again; then those jobs run, and their durations are printed.

The goal is under 200 ms per page with 100,000 judgments, a fresh report or not; the jobs take
what a fit of every judgment takes.

    .venv/bin/python bench/dashboard.py [--judgments 100000] [--repeat 5] --redis-url redis://127.0.0.1:PORT/N
                                        [--keep | --schema SCHEMA]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, insert, select, text
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1]))

from app.main import create_app
from bench.stats import POSTGRES, fill
from tandem.infra import migrate, queue, tokens
from tandem.infra import services as current_services
from tandem.infra.db import Storage
from tandem.infra.github import GitHubApp
from tandem.infra.models import DEFAULT_TEAM, CommandVersion, Round
from tandem.infra.services import Services
from tandem.infra.settings import Settings
from tests.stats_synthetic import Plan

PAGES = (
    "/",
    "/dashboard/",
    "/dashboard/tasks",
    "/dashboard/tasks?status=open&repo=evals/mirror-1&page=20",
    "/dashboard/tasks/{task}",
    "/dashboard/leaderboard",
    "/dashboard/leaderboard?repo=evals/mirror-0&round=1&metadata=suite%3Ds1",
    "/dashboard/raters",
    "/dashboard/raters/rater-07",
    "/dashboard/data",
)


def measure(client: TestClient, headers: dict, path: str, repeat: int) -> tuple[float, float]:
    """Milliseconds of the first request and the median of the next ``repeat``."""
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: HTTP {answer.status_code}: {answer.text[:300]}")
    return times[0], statistics.median(times[1:])


def pages(client: TestClient, headers: dict, plan: Plan, repeat: int, state: str) -> None:
    print(f"{state}: {'page':<72} {'first ms':>9} {'then ms':>8}")
    for page in PAGES:
        path = page.format(task=plan.pairs // 2)
        first, then = measure(client, headers, path, repeat)
        print(f"{state}: {path:<72} {first:>9.0f} {then:>8.0f}")


def run_jobs(services: Services, state: str) -> None:
    """Run the dashboard's queued jobs (as `tandem worker` would) and print each one's duration."""
    dashboard = services.queue(queue.DASHBOARD)
    jobs = dashboard.get_jobs()
    SimpleWorker([dashboard], connection=services.redis, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )
    for job in jobs:
        job.refresh()
        seconds = (job.ended_at - job.started_at).total_seconds()
        described = f"{job.kwargs['kind']} {job.kwargs['filters'] or ''}".strip()
        print(f"{state}: job {described:<86} {seconds:>6.1f} s  {job.get_status()}: {job.return_value()}")


def vote(services: Services) -> None:
    """A vote arrives: a new command version (what a rater's comment records first), which is
    what changes the data's freshness for every figure."""
    with services.storage.transaction() as session:
        round_id, task_id = session.execute(select(Round.id, Round.task_id).limit(1)).one()
        session.execute(
            insert(CommandVersion).values(
                task_id=task_id,
                round_id=round_id,
                rater_id=1,
                comment_id=10**12,
                target="vote",
                written_at=datetime.now(UTC),
                value={"verdict": "A", "strength": None, "rationale": "bench"},
                delivery_id="bench",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--schema", help="reuse this PostgreSQL schema, built by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    args = parser.parse_args()

    plan = Plan(
        models=20,
        pairs=-(-args.judgments // 3),
        raters=100,
        raters_per_pair=3,
        tie_share=0.1,
        always_a=("rater-07",),
        seed=1,
    )
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    schema = args.schema or f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    if not args.schema:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    try:
        storage = Storage.from_url(url)
        if not args.schema:
            migrate.upgrade(storage.engine)
            started = time.perf_counter()
            rows = fill(storage, plan, postgres=True)
            print(f"built {rows} rows ({3 * plan.pairs} current votes) in {time.perf_counter() - started:.1f} s")
        settings = Settings(_env_file=None, database_url=url, redis_url=args.redis_url)
        connection = queue.connect(args.redis_url)
        connection.flushdb()
        services = Services(settings, storage, connection, GitHubApp(settings, connection))
        current_services.use(services)  # the jobs' services
        with storage.transaction() as session:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            token = tokens.create_token(
                session, name, team=DEFAULT_TEAM, scopes=[tokens.Scope.READ, tokens.Scope.EXPORT]
            )
        headers = {"Authorization": f"Bearer {token}"}
        client = TestClient(create_app(services))
        pages(client, headers, plan, args.repeat, "cold")
        run_jobs(services, "cold")
        pages(client, headers, plan, args.repeat, "warm")
        vote(services)
        pages(client, headers, plan, args.repeat, "stale")
        run_jobs(services, "stale")
        connection.flushdb()
        storage.engine.dispose()
    finally:
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
