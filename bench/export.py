"""Exports at scale: rows/s and peak RSS of `tandem export` (full, --since the latest tenth,
--repo), and the time to first byte and in all of GET /api/tasks/{id}/judgments for a task with
2,000 judgment rows.

The database is bench/stats.py's (tests/stats_synthetic.py: 20 models, 100 raters), shaped like
a few months of a research team's work: 17 raters per task, so --judgments 1,000,000 makes about
51,500 tasks and 64,000 rounds; one vote in eight has an older, superseded version (12.5 %);
scores on two axes for both sides of every vote (about 3.5M ratings); a review for most votes;
then spread over 20 repositories, a line comment for one vote in eleven, one task with 2,000
judgment rows, and the change feed (export_changes) that these writes would have left. Rows go
in with COPY on PostgreSQL and executemany on SQLite.

    .venv/bin/python bench/export.py                              # PostgreSQL, 1,000,000 judgments
    .venv/bin/python bench/export.py --judgments 200000 --sqlite
    .venv/bin/python bench/export.py --judgments 100000 --keep    # then --schema NAME to rerun
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import Table, func, insert, select, text

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from stats import TANDEM, database, fill  # noqa: E402

from app.main import create_app  # noqa: E402
from tandem.infra import migrate, tokens  # noqa: E402
from tandem.infra.db import Base, Storage  # noqa: E402
from tandem.infra.models import Judgment  # noqa: E402
from tandem.infra.services import Services  # noqa: E402
from tandem.infra.settings import Settings  # noqa: E402
from tandem.infra.tokens import Scope  # noqa: E402
from tests.servers import LiveServer  # noqa: E402
from tests.stats_synthetic import START, Plan, voted_at  # noqa: E402

RATERS_PER_TASK = 17
BIG_TASK_ROWS = 2_000
REPOS = 20

# What the writes of a real deployment would have left besides the plan's rows, in SQL both
# databases run.
SHAPING = (
    f"UPDATE tasks SET repo_full_name = 'evals/mirror-' || (id % {REPOS})",
    "UPDATE sides SET repo_full_name = (SELECT repo_full_name FROM tasks WHERE tasks.id = "
    "(SELECT task_id FROM pairs WHERE pairs.id = sides.pair_id))",
    "INSERT INTO line_comments (task_id, pair_id, round_id, side, author_id, author_login, path, line, body,"
    " comment_id, delivery_id, created_at, updated_at) SELECT task_id, pair_id, round_id, 'A', rater_id,"
    " rater_login, 'src/pager.py', 3, 'this breaks on an empty page', 2000000000 + id, 'lc' || id, recorded_at,"
    " recorded_at FROM judgments WHERE superseded_at IS NULL AND id % 11 = 0",
)
# The change feed as tandem.domain.changes writes it: each vote, each supersede, each review (all of
# the rater's versions in the round), each rater's scores and line comments, each round, at the time
# of the write.
FEED = (
    "SELECT round_id, rater_id, id, recorded_at FROM judgments",
    "SELECT round_id, rater_id, id, superseded_at FROM judgments WHERE superseded_at IS NOT NULL",
    "SELECT j.round_id, j.rater_id, CAST(NULL AS INTEGER), r.created_at FROM judgment_reviews r JOIN judgments j"
    " ON j.id = r.judgment_id",
    "SELECT DISTINCT round_id, rater_id, CAST(NULL AS INTEGER), created_at FROM ratings",
    "SELECT round_id, author_id, CAST(NULL AS INTEGER), created_at FROM line_comments",
    "SELECT id, CAST(NULL AS BIGINT), CAST(NULL AS INTEGER), created_at FROM rounds",
)


def build(storage: Storage, judgments: int, postgres: bool) -> Plan:
    plan = Plan(models=20, pairs=max(2, round(judgments / (RATERS_PER_TASK * 8 / 7))), raters=100,
                raters_per_pair=RATERS_PER_TASK, tie_share=0.1, seed=1)
    started = time.perf_counter()
    rows = fill(storage, plan, postgres, ratings_every=1, batch=2_000)
    with storage.engine.begin() as connection:
        rows += add_big_task(connection, plan)
        for statement in SHAPING:
            connection.execute(text(statement))
        for source in FEED:
            connection.execute(text(f"INSERT INTO export_changes (round_id, rater_id, judgment_id, changed_at) {source}"))
        counts = {name: connection.scalar(text(f"SELECT count(*) FROM {name}")) for name in (
            "tasks", "rounds", "judgments", "ratings", "judgment_reviews", "line_comments", "export_changes")}
        superseded = connection.scalar(select(func.count()).select_from(Judgment).where(Judgment.superseded_at.is_not(None)))
    # As autovacuum leaves a database that has been written for months: statistics for the planner,
    # and the visibility map set, without which an index-only scan reads every row's page too.
    with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
    print(f"built in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{v:,} {k}" for k, v in counts.items())
          + f" ({superseded / counts['judgments']:.1%} of judgments superseded)")
    return plan


def add_big_task(connection, plan: Plan) -> int:
    """One more task, judged by 1,600 raters, 400 of whom changed their vote: 2,000 rows."""
    task, round_id, output = plan.pairs + 1, 2 * plan.pairs + 1, 2 * plan.pairs + 1
    first = connection.scalar(select(func.max(Judgment.id))) + 1
    at = voted_at(plan.pairs)
    tables = {
        "tasks": [{"id": task, "repo_full_name": "evals/big", "base": "main", "prompt": "Fix it", "raters": [],
                   "metadata": {}, "status": "open", "created_at": at, "updated_at": at}],
        "outputs": [{"id": output + i, "task_id": task, "position": i, "model": f"model-0{i}"} for i in (0, 1)],
        "pairs": [{"id": task, "task_id": task, "a_is_first_output": True, "opened_at": at}],
        "sides": [{"id": output + i, "pair_id": task, "letter": "AB"[i], "output_id": output + i,
                   "repo_full_name": "evals/big", "branch": f"big-{i}"} for i in (0, 1)],
        "rounds": [{"id": round_id, "task_id": task, "number": 1, "prompt": "Fix it", "created_at": at}],
        "judgments": [], "ratings": [],
    }
    for n in range(BIG_TASK_ROWS):
        rater = n % 1_600
        common = {"task_id": task, "pair_id": task, "round_id": round_id, "rater_id": 100_000 + rater,
                  "rater_login": f"big-rater-{rater}", "source": "comment", "on_side": "A", "comment_id": 3 * 10**9 + n,
                  "delivery_id": f"big{n}", "voted_at": at, "recorded_at": at + timedelta(seconds=n),
                  "rationale": "The pager now checks the empty case and keeps the old API. " * 10}
        old = n < BIG_TASK_ROWS - 1_600
        tables["judgments"].append(common | {
            "id": first + n, "verdict": "AB"[n % 2], "strength": "clearly", "review_state": "pending",
            "superseded_at": at + timedelta(hours=1) if old else None, "superseded_reason": "revote" if old else None,
        })
        if not old:
            tables["ratings"] += [{"task_id": task, "round_id": round_id, "judgment_id": first + n, "rater_id": 100_000 + rater,
                                   "rater_login": f"big-rater-{rater}", "side": side, "axis": axis, "score": 3,
                                   "comment_id": 3 * 10**9 + n, "delivery_id": f"big{n}", "created_at": at}
                                  for side in "AB" for axis in ("correctness", "security")]
    for name, rows in tables.items():
        connection.execute(insert(Table(name, Base.metadata)), rows)
    return sum(map(len, tables.values()))


def reference_ms() -> float:
    """How long this machine takes for a fixed piece of plain Python, best of three: machines of
    one kind differ, and one machine's speed drifts (2x seen within an hour), so each figure
    comes with the speed it was taken at."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def run_export(url: str, redis_url: str, scratch: Path, *options: str) -> tuple[int, float]:
    """Run `tandem export` as a process; print its rows/s, peak RSS and CPU time; return its rows
    and seconds."""
    reference = reference_ms()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_DATABASE_URL": url, "TANDEM_REDIS_URL": redis_url}
    out, usage = scratch / "export.jsonl", scratch / "usage"
    # Through time(1): a child forked from this process inherits its peak RSS (the builder's).
    command = ["/usr/bin/time", "-o", str(usage), "-f", "%M %U %S", TANDEM, "export", str(out), *options]
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=scratch, stderr=subprocess.DEVNULL, check=True)
    seconds = time.perf_counter() - started
    rss_kb, user, system = usage.read_text().split()
    with open(out, "rb") as lines:
        rows = sum(1 for _ in lines)
    print(f"tandem export {' '.join(options) or '(full)'}: {rows:,} rows in {seconds:.1f} s, "
          f"{rows / seconds:,.0f} rows/s, peak RSS {int(rss_kb) / 1024:.0f} MB "
          f"(its CPU time {float(user) + float(system):.1f} s; reference loop {reference:.0f} ms)")
    return rows, seconds


def time_api(url: str, redis_url: str, task_id: int, requests: int = 20) -> None:
    """GET the big task's judgments over HTTP; print the median and p95 of the time to the first
    byte and to the last."""
    services = Services.from_settings(Settings(_env_file=None, database_url=url, redis_url=redis_url))
    with services.storage.transaction() as session:
        secret = tokens.create_token(session, f"bench-{uuid.uuid4().hex[:8]}", team="default", scopes=[Scope.EXPORT])
    first, total, size = [], [], 0
    with LiveServer(create_app(services)) as server, httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
    ) as http:
        for _ in range(requests):
            started = time.perf_counter()
            with http.stream("GET", f"/api/tasks/{task_id}/judgments", headers={"Accept-Encoding": "identity"}) as response:
                chunks = response.iter_raw()
                size = len(next(chunks))
                first.append(time.perf_counter() - started)
                size += sum(map(len, chunks))
            total.append(time.perf_counter() - started)
    services.storage.engine.dispose()

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.0f} ms, p95 {sorted(values)[int(0.95 * len(values))] * 1000:.0f} ms"

    print(f"GET /api/tasks/{task_id}/judgments ({BIG_TASK_ROWS:,} rows, {size / 2**20:.1f} MB), {requests} times: "
          f"first byte {ms(first)}; complete {ms(total)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000, help="judgment rows, about")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--schema", help="reuse this PostgreSQL schema, built by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    parser.add_argument(
        "--redis", default=os.environ.get("TANDEM_TEST_REDIS_URL"), required="TANDEM_TEST_REDIS_URL" not in os.environ,
        help="a Redis the bench may empty (never a running Tandem's)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch_dir, database(args, Path(scratch_dir), "bench_export") as url:
        scratch = Path(scratch_dir)
        storage = Storage.from_url(url)
        if not args.schema:
            migrate.upgrade(storage.engine)
            build(storage, args.judgments, postgres=not args.sqlite)
        with storage.transaction() as session:
            tasks = session.scalar(text("SELECT max(id) FROM tasks"))  # the big task is the last
            pairs = tasks - 1
        storage.engine.dispose()
        cutoff = voted_at(int(0.9 * pairs))
        full = run_export(url, args.redis, scratch)
        since = run_export(url, args.redis, scratch, "--since", cutoff.isoformat())
        print(f"--since: {since[0] / full[0]:.1%} of the full export's rows in {since[1] / full[1]:.3f} of its time, "
              f"{since[1] / since[0] / (full[1] / full[0]):.2f}x its time per row")
        # What every export pays whatever it reads (start-up, connecting, the cursor token): an
        # incremental export of nothing. The rest is each export's cost per row.
        _, fixed = run_export(url, args.redis, scratch, "--since", (cutoff + timedelta(days=365)).isoformat())
        print(f"--since beyond the fixed {fixed:.2f} s (an export of no changes): "
              f"{(since[1] - fixed) / since[0] / ((full[1] - fixed) / full[0]):.2f}x the full export's time per row")
        run_export(url, args.redis, scratch, "--repo", "evals/mirror-3")
        time_api(url, args.redis, tasks)
        print(f"(--since {cutoff:%Y-%m-%d %H:%M}: the latest tenth of the tasks, {START:%Y-%m-%d} being the first)")


if __name__ == "__main__":
    main()
