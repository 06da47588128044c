"""`tandem stats` on a synthetic database: seconds and peak resident memory.

Builds judgments over 20 models drawn from known strengths (tests/stats_synthetic.py: three
raters per pair, a tenth of the votes pending review, every seventh vote replacing an earlier
one, scores on two axes for every fourth vote, a review for each), bulk-inserted (COPY on
PostgreSQL, executemany on SQLite), then runs the real command, `tandem stats --format json
--bootstrap 1000`, as a process and reports its wall time and peak RSS (GNU time's, of that
process alone), and where the time goes (loading the records, computing the report) measured
in this process.

PostgreSQL at 127.0.0.1:5432, database test, in a schema of its own dropped afterwards:

    .venv/bin/python bench/stats.py [--judgments 100000] [--bootstrap 1000] [--sqlite] [--redis URL]
    .venv/bin/python bench/stats.py --judgments 1000000      # the issue's size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Table, create_engine, insert, text

sys.path.insert(0, str(Path(__file__).parents[1]))

from tandem.domain.statistics.queries import Filters, load
from tandem.domain.statistics.report import build
from tandem.infra import migrate
from tandem.infra.db import Base, Storage
from tests.stats_synthetic import Plan, database_rows

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TANDEM = str(Path(sys.executable).with_name("tandem"))
JSON_COLUMNS = {"raters", "metadata"}


def fill(storage: Storage, plan: Plan, postgres: bool, **options) -> int:
    """Insert the plan's rows; return how many. ``options`` go to database_rows (bench/export.py
    builds its database with this too)."""
    count = 0
    with storage.engine.begin() as connection:
        for batch in database_rows(plan, **({"ratings_every": 4} | options)):
            for name, rows in batch.items():
                if not rows:
                    continue
                count += len(rows)
                if not postgres:
                    connection.execute(insert(Table(name, Base.metadata)), rows)
                    continue
                # COPY skips the models' Python-side defaults (a task's team): give them here.
                defaults = {
                    c.name: c.default.arg for c in Base.metadata.tables[name].columns
                    if c.name not in rows[0] and c.default is not None and c.default.is_scalar
                }
                columns = [*rows[0], *defaults]
                cursor = connection.connection.driver_connection.cursor()
                with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        row = row | defaults
                        copy.write_row(
                            [json.dumps(row[c]) if c in JSON_COLUMNS else row[c] for c in columns]
                        )
        if postgres:
            connection.execute(text("ANALYZE"))
    return count


@contextlib.contextmanager
def database(args: argparse.Namespace, scratch: Path, prefix: str) -> Iterator[str]:
    """The benchmark's database URL: a SQLite file in ``scratch`` (--sqlite), the PostgreSQL
    schema an earlier --keep run left (--schema), or a new one; dropped afterwards unless --keep."""
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    schema = args.schema or f"{prefix}_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:///{scratch / 'tandem.db'}"
    else:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        if not args.schema:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url
    finally:
        if args.keep and not args.sqlite:
            print(f"kept schema {schema}")
        elif not args.sqlite:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_command(database_url: str, redis_url: str, bootstrap: int, scratch: Path) -> tuple[float, float, dict]:
    """Run `tandem stats`; return its wall seconds, peak RSS in MB and its report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_REDIS_URL": redis_url,
    }
    out, peak = scratch / "stats.json", scratch / "peak"
    # Through GNU time: a child's own ru_maxrss starts at this process's resident size when it
    # was forked (Linux keeps the larger of the two across exec), so it would count the bench.
    command = ["/usr/bin/time", "-f", "%M", "-o", str(peak), TANDEM, "stats", "--format", "json"]
    started = time.perf_counter()
    with open(out, "w") as stdout:
        status = subprocess.call([*command, "--bootstrap", str(bootstrap)], stdout=stdout, env=env, cwd=scratch)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"tandem stats failed (status {status})")
    return seconds, int(peak.read_text().split()[-1]) / 1024, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000, help="current votes to create")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--raters", type=int, default=100)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--schema", help="reuse this PostgreSQL schema, built by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="the Redis the command is configured with")
    args = parser.parse_args()

    plan = Plan(models=args.models, pairs=-(-args.judgments // 3), raters=args.raters, raters_per_pair=3,
                tie_share=0.1, always_a=("rater-07",), seed=1)
    with tempfile.TemporaryDirectory() as scratch_dir, database(args, Path(scratch_dir), "bench_stats") as url:
        scratch = Path(scratch_dir)
        storage = Storage.from_url(url)
        if not args.schema:
            migrate.upgrade(storage.engine)
            started = time.perf_counter()
            rows = fill(storage, plan, postgres=not args.sqlite)
            print(f"built {rows} rows ({3 * plan.pairs} current votes) in {time.perf_counter() - started:.1f} s")

        with storage.transaction() as session:
            started = time.perf_counter()
            records = load(session, Filters())
            loaded = time.perf_counter() - started
        started = time.perf_counter()
        report = build(records, bootstrap=args.bootstrap)
        computed = time.perf_counter() - started
        print(f"in process: load {len(records.judgments)} judgments {loaded:.2f} s, report {computed:.2f} s")

        seconds, rss, shown = run_command(url, args.redis, args.bootstrap, scratch)
        top = shown["ranking"]["models"][0]
        print(f"tandem stats --format json --bootstrap {args.bootstrap}: {seconds:.2f} s, peak RSS {rss:.0f} MB "
              f"({shown['judgments']} judgments; first {top['model']} {top['rating']} "
              f"[{top['lower']}, {top['upper']}])")
        assert shown["judgments"] == report["judgments"]
        storage.engine.dispose()


if __name__ == "__main__":
    main()
