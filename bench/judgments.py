"""Judgments recorded per second by one worker on PostgreSQL, and the delay from webhook receipt
to the committed judgment.

Everything real but GitHub: `tandem serve` and one `tandem worker` as processes, PostgreSQL
(127.0.0.1:5432, database test, a schema of its own), Redis (database 12), and the GitHub
emulator in this process. Raters' `/prefer` comments are made on the emulator (real webhook
bodies), then posted, signed, to the server by this script, which notes when each was answered
202 (its receipt). The worker records them, answers on GitHub (reactions, check runs, labels).

  latency phase:    --rate deliveries/s for --seconds, the worker running; per judgment, the delay
                    from receipt to its row's recorded_at (committed in the same transaction).
  paced phase:      --paced votes, each posted once the previous one's reaction is on GitHub
                    (the worker keeps up, however slow the machine): no backlog coalesces syncs.
  throughput phase: --burst deliveries accepted while no worker runs, then one worker drains
                    them: judgments committed per second, with and without the worker's start-up,
                    and the worker's CPU time per vote (its judgment and its reaction).

After each phase, once both check runs show every judgment: the installation's GitHub writes
(from the emulator's request log) per judgment, and the judgments an hour one installation can
then take within GitHub's secondary limit of 500 writes an hour
(tandem/sandbox/github/secondary.py) and within Tandem's own budget (TANDEM_WRITES_PER_HOUR).

    .venv/bin/python bench/judgments.py [--rate 20] [--seconds 10] [--burst 500] [--paced 20] [--redis-url URL] [--port PORT]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).parents[1]))

from tandem.infra import migrate  # noqa: E402
from tandem.infra.db import Storage  # noqa: E402
from tandem.infra.models import Judgment, Task  # noqa: E402
from tandem.sandbox.github import GitHubEmulator  # noqa: E402
from tandem.sandbox.github.secondary import SecondaryLimits  # noqa: E402
from tandem.sandbox.processes import free_port  # noqa: E402
from tandem.infra.settings import Settings  # noqa: E402
from tests import github_views as views  # noqa: E402

TANDEM = str(Path(sys.executable).with_name("tandem"))
SECRET = "bench-webhook-secret"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Bench:
    def __init__(self, scratch: Path, raters: int, redis_url: str, port: int | None = None):
        self.scratch = scratch
        self.emu = GitHubEmulator(root=scratch / "github", installation_rate_limit=10**9).start()
        self.app = self.emu.register_app(slug="tandem", name="Tandem", webhook_secret=SECRET)
        self.emu.create_org("evals-org")
        self.raters = [f"rater-{n}" for n in range(raters)]
        for login in self.raters:
            self.emu.create_user(login)
            self.emu.add_org_member("evals-org", login)
        config = "mirror: true\nraters: [" + ", ".join(self.raters) + "]\nraters_per_task: 20\n"
        self.emu.create_repository("evals-org", "mirror", files={".github/tandem.yml": config, "a.py": "A = 0\n"})
        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        self.database_url = f"{POSTGRES}?options=-csearch_path%3D{self.schema}"
        self.storage = Storage.from_url(self.database_url)
        migrate.upgrade(self.storage.engine)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
            "TANDEM_APP_ID": str(self.app.id),
            "TANDEM_PRIVATE_KEY": self.app.private_key_pem,
            "TANDEM_WEBHOOK_SECRET": SECRET,
            "TANDEM_GITHUB_API_URL": self.emu.url,
            "TANDEM_DATABASE_URL": self.database_url,
            "TANDEM_REDIS_URL": redis_url,
            "TANDEM_GIT_CACHE_DIR": str(scratch / "git-cache"),
            "TANDEM_WRITE_SPACING_SECONDS": "0",
            "TANDEM_WRITES_PER_MINUTE": "1000000",
            "TANDEM_WRITES_PER_HOUR": "1000000",
            "TANDEM_LOG_LEVEL": "WARNING",
        }
        # A fixed port could find another bench's server answering there.
        self.port = port or free_port()
        self.server = subprocess.Popen([TANDEM, "serve", "--port", str(self.port)], env=self.env, cwd=scratch)
        self.worker = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}")
        wait_for(self._server_up, "tandem serve")

    def _server_up(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([TANDEM, "worker"], env=self.env, cwd=self.scratch)

    def stop_worker(self) -> None:
        self.worker.terminate()
        self.worker.wait(timeout=30)

    def open_pair(self) -> int:
        self.emu.set_webhook(f"http://127.0.0.1:{self.port}/webhooks/github")
        self.installation = self.emu.install_app("evals-org", repositories="all").id
        self.emu.drain()

        def installed():
            with self.storage.transaction() as session:
                return session.scalar(text("SELECT count(*) FROM repositories")) > 0

        wait_for(installed, "the installation webhook to be processed")
        return self.submit_task()

    def submit_task(self) -> int:
        """Submit a task on the mirror and wait for its pair; returns side A's PR number."""
        self.emu.set_webhook(f"http://127.0.0.1:{self.port}/webhooks/github")
        task = self.scratch / "task.yml"
        task.write_text(
            "repo: evals-org/mirror\nbase: main\nprompt: Make A one.\noutputs:\n"
            "  - {model: model-x, files: {a.py: \"A = 1\\n\"}}\n  - {model: model-y, files: {a.py: \"A = 2\\n\"}}\n"
        )
        submitted = subprocess.run([TANDEM, "task", "submit", str(task)], env=self.env, cwd=self.scratch,
                                   capture_output=True, text=True, check=True)
        task_id = int(submitted.stdout)

        def opened():
            with self.storage.transaction() as session:
                task = session.get(Task, task_id)
                if task.status == "failed":
                    raise SystemExit(f"the pair did not open: {task.failure_reason}")
                return task.status == "open"

        wait_for(opened, "the pair to open")
        with self.storage.transaction() as session:
            return session.get(Task, task_id).pair.side("A").pr_number

    def comments(self, number: int, count: int, offset: int) -> list[bytes]:
        """Real webhook bodies of raters' votes, made on the emulator while it delivers nowhere."""
        self.emu.set_webhook(None)
        before = len(self.emu.deliveries)
        for n in range(count):
            rater = self.raters[offset + n]
            self.emu.as_user(rater).comment("evals-org/mirror", number, f"/prefer A slightly\nVote {offset + n}.")
        self.emu.drain()
        return [d.body for d in self.emu.deliveries[before:] if d.event == "issue_comment"]

    def post(self, body: bytes) -> datetime:
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = self.http.post("/webhooks/github", content=body, headers={
            "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature, "Content-Type": "application/json",
        })
        assert response.status_code == 202, response.text
        return datetime.now(UTC)

    def shown(self) -> set[str]:
        """The titles of the pair's check runs, as GitHub shows them."""
        heads = [p["head_sha"] for p in views.pulls(self.emu, "evals-org/mirror")]
        return {run["output"]["title"] for head in heads for run in views.check_runs(self.emu, "evals-org/mirror", head)}

    def reactions(self) -> int:
        return sum(r.path.endswith("/reactions") and r.status < 300 for r in self.emu.requests)

    def writes_per_judgment(self, phase: str, judgments: int, total: int, writes_before: int) -> int:
        """Wait for GitHub to show all `total` judgments; print the phase's writes per judgment."""
        wait_for(lambda: self.shown() == {f"{total} of 20 judgments"}, f"the check runs to show {total} judgments")
        wait_for(lambda: self.reactions() >= total, "every vote's reaction")
        writes = self.emu.write_count(self.installation)
        per = (writes - writes_before) / judgments
        github_hour = SecondaryLimits().writes_per_hour
        budget = Settings(_env_file=None).writes_per_hour
        print(f"{phase}: {writes - writes_before} GitHub writes for {judgments} judgments = {per:.2f} per judgment; "
              f"one installation can take {github_hour / per:.0f} judgments/hour within GitHub's {github_hour} "
              f"writes/hour ({budget / per:.0f} within Tandem's budget of {budget})")
        return writes

    def recorded_span(self, last: int) -> tuple[float, float]:
        """When the first and the last of the `last` judgments recorded last were committed, on this
        process's perf_counter clock."""
        with self.storage.transaction() as session:
            times = session.scalars(select(Judgment.recorded_at).order_by(Judgment.recorded_at.desc()).limit(last)).all()
        offset = time.perf_counter() - datetime.now(UTC).timestamp()
        return times[-1].timestamp() + offset, times[0].timestamp() + offset

    def worker_cpu(self) -> float:
        """CPU seconds (user and system) the running worker has used."""
        fields = Path(f"/proc/{self.worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def judgments(self) -> int:
        with self.storage.transaction() as session:
            return session.scalar(select(func.count()).select_from(Judgment))

    def close(self) -> None:
        for process in (self.worker, self.server):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        self.emu.stop()
        self.storage.engine.dispose()
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--paced", type=int, default=20)
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--port", type=int, default=None, help="for tandem serve (default: a free port)")
    args = parser.parse_args()
    steady = int(args.rate * args.seconds)

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    with tempfile.TemporaryDirectory() as directory:
        bench = Bench(Path(directory), steady + args.paced + args.burst, args.redis_url, args.port)
        try:
            bench.start_worker()
            number = bench.open_pair()
            bodies = bench.comments(number, steady, 0)
            writes = bench.emu.write_count(bench.installation)

            receipts = {}
            start = time.perf_counter()
            for n, body in enumerate(bodies):
                delay = start + n / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                receipts[f"Vote {n}."] = bench.post(body)
            wait_for(lambda: bench.judgments() >= steady, "the steady judgments")
            with bench.storage.transaction() as session:
                rows = session.execute(select(Judgment.rationale, Judgment.recorded_at)).all()
            delays = sorted((recorded - receipts[rationale]).total_seconds() * 1000 for rationale, recorded in rows)
            print(f"latency phase: {steady} judgments at {args.rate:.0f}/s; receipt -> committed judgment: "
                  f"median {statistics.median(delays):.1f} ms, p90 {delays[int(0.9 * len(delays))]:.1f} ms, "
                  f"p99 {delays[int(0.99 * len(delays))]:.1f} ms, max {delays[-1]:.1f} ms")
            writes = bench.writes_per_judgment("latency phase", steady, steady, writes)

            paced = bench.comments(number, args.paced, steady)
            for n, body in enumerate(paced):
                bench.post(body)
                wait_for(lambda: bench.reactions() >= steady + n + 1, "the vote's reaction")
            done = steady + args.paced
            writes = bench.writes_per_judgment("paced phase", args.paced, done, writes)

            bench.stop_worker()
            burst = bench.comments(number, args.burst, done)
            for body in burst:
                bench.post(body)
            started = time.perf_counter()
            bench.start_worker()
            wait_for(lambda: bench.judgments() > done, "the burst's first judgment")
            cpu_started = bench.worker_cpu()
            wait_for(lambda: bench.judgments() >= done + args.burst, "the burst of judgments")
            elapsed = time.perf_counter() - started
            wait_for(lambda: bench.reactions() >= done + args.burst, "the burst's reactions")
            answered = time.perf_counter() - started
            cpu = bench.worker_cpu() - cpu_started
            first, last = bench.recorded_span(args.burst)
            print(f"throughput phase: {args.burst} judgments by one worker in {elapsed:.1f} s = "
                  f"{args.burst / elapsed:.0f} judgments/s (worker start-up included; PostgreSQL); "
                  f"every vote's reaction on GitHub after {answered:.1f} s = {args.burst / answered:.0f} votes/s")
            print(f"throughput phase, steady: first judgment {first - started:.1f} s after the worker was started "
                  f"(its start-up), then {args.burst - 1} more in {last - first:.2f} s = "
                  f"{(args.burst - 1) / (last - first):.0f} judgments/s")
            print(f"throughput phase, CPU: the worker used {cpu:.2f} s of CPU from the first judgment to the last "
                  f"reaction = {1000 * cpu / args.burst:.1f} ms per vote, {args.burst / cpu:.0f} votes per CPU-second "
                  "(less sensitive to a busy machine than the rates above; PostgreSQL's and GitHub's share not counted)")
            bench.writes_per_judgment("throughput phase", args.burst, done + args.burst, writes)
        finally:
            bench.close()
    redis.Redis.from_url(args.redis_url).flushdb()


if __name__ == "__main__":
    main()
