"""The dashboard's server time per page on a synthetic PostgreSQL database.

Builds `--judgments N` current votes over 20 models (bench/stats.py's builder:
tests/stats_synthetic.py), then requests every page in process (the ASGI app, no network) with
an API token of the research role, and prints per page the first request's time (the
statistics report computed) and the median of the next `--repeat` (the report kept in Redis).
The goal is under 200 ms per page with 100,000 judgments.

    .venv/bin/python bench/dashboard.py [--judgments 100000] [--repeat 5] --redis-url redis://127.0.0.1:PORT/N
                                        [--keep | --schema SCHEMA]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1]))

from app.main import create_app  # noqa: E402
from bench.stats import POSTGRES, fill  # noqa: E402
from tandem.infra import migrate, queue, tokens  # noqa: E402
from tandem.infra.db import Storage  # noqa: E402
from tandem.infra.github import GitHubApp  # noqa: E402
from tandem.infra.models import DEFAULT_TEAM  # noqa: E402
from tandem.infra.services import Services  # noqa: E402
from tandem.infra.settings import Settings  # noqa: E402
from tests.stats_synthetic import Plan  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--schema", help="reuse this PostgreSQL schema, built by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    args = parser.parse_args()

    plan = Plan(models=20, pairs=-(-args.judgments // 3), raters=100, raters_per_pair=3, tie_share=0.1,
                always_a=("rater-07",), seed=1)
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
        with storage.transaction() as session:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            token = tokens.create_token(session, name, team=DEFAULT_TEAM, scopes=[tokens.Scope.READ, tokens.Scope.EXPORT])
        headers = {"Authorization": f"Bearer {token}"}
        client = TestClient(create_app(services))
        print(f"{'page':<72} {'first ms':>9} {'then ms':>8}")
        for page in PAGES:
            path = page.format(task=plan.pairs // 2)
            first, then = measure(client, headers, path, args.repeat)
            print(f"{path:<72} {first:>9.0f} {then:>8.0f}")
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
