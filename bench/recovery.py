"""How long a killed worker's work waits: a `tandem worker` is SIGKILLed in the middle of opening
a pair (at --points moments spread over an unharmed opening's duration) and in the middle of a
`/prefer` delivery, a new worker is started at once, and the time from the kill to the work done
is printed (the pair open; the judgment recorded), with the time the same work takes unharmed.
Then, with a second worker running and none started, the killed worker's opening is taken up
by the other once the dead one's heartbeat lapses: the case of a worker on another machine.

Everything real: `tandem worker` processes, Redis, SQLite, git, and the GitHub emulator (each of
its answers delayed by --latency, to spread an opening over time) with the web app
in this process, as in the tests. One opening first, unharmed, also fills the clone cache: the
first clone is another fault's subject (issue 8, item 6).

    .venv/bin/python bench/recovery.py --redis-url redis://127.0.0.1:PORT/N [--points 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr
from rq.executions import Execution
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parents[1]))

from app.main import create_app  # noqa: E402
from tandem.infra import migrate, queue
from tandem.domain import tasks  # noqa: E402
from tandem.infra import services as services_module  # noqa: E402
from tandem.infra.db import Storage  # noqa: E402
from tandem.infra.github import GitHubApp  # noqa: E402
from tandem.infra.liveness import worker_beats  # noqa: E402
from tandem.infra.models import Judgment, Repository, Task  # noqa: E402
from tandem.infra.services import Services  # noqa: E402
from tandem.domain.task_spec import parse_task  # noqa: E402
from tests.conftest import MIRROR_FILES, make_settings  # noqa: E402
from tandem.sandbox.github import GitHubEmulator  # noqa: E402
from tests.processes import kill, start_worker, stop, wait_for, worker_env  # noqa: E402
from tests.servers import LiveServer  # noqa: E402

REPO = "evals-org/mlflow"
SECRET = "bench-webhook-secret"


class Bench:
    def __init__(self, scratch: Path, redis_url: str, latency: float):
        self.scratch = scratch
        self.emu = GitHubEmulator(root=scratch / "github", installation_rate_limit=10**9).start()
        app = self.emu.register_app(slug="tandem", name="Tandem", webhook_secret=SECRET)
        settings = make_settings(
            app_id=app.id, private_key=SecretStr(app.private_key_pem), webhook_secret=SecretStr(SECRET),
            github_api_url=self.emu.url, github_url=self.emu.url, redis_url=redis_url,
            database_url=f"sqlite:///{scratch / 'tandem.db'}", env_file=scratch / ".env",
            git_cache_dir=scratch / "git-cache", job_retry_intervals=[5, 15, 60, 120, 300, 600],
        )
        connection = queue.connect(redis_url)
        connection.flushdb()
        storage = Storage.from_url(settings.database_url)
        migrate.upgrade(storage.engine)
        self.services = Services(settings, storage, connection, GitHubApp(settings, connection))
        services_module.use(self.services)
        self.env = worker_env(settings, TANDEM_LOG_LEVEL="WARNING")
        self.emu.create_org("evals-org")
        # Raters by team membership, which a delivery's job asks GitHub about (once per rater).
        self.raters = [f"team-rater-{n}" for n in range(4)]
        for login in self.raters:
            self.emu.create_user(login)
            self.emu.add_org_member("evals-org", login)
        self.emu.create_team("evals-org", "raters", members=self.raters)
        self.emu.create_repository("evals-org", "mlflow", files=MIRROR_FILES, default_branch="main")
        self.server = LiveServer(create_app(self.services)).__enter__()
        self.emu.set_webhook(f"{self.server.url}/webhooks/github")
        self.worker = start_worker(self.env, scratch, scratch / "worker.log")
        self.emu.install_app("evals-org", repositories="all")
        wait_for(self.installed, "the installation to be recorded")
        self.emu.faults.latency(latency)

    def installed(self) -> bool:
        with self.services.storage.transaction() as session:
            return session.scalar(select(func.count()).select_from(Repository)) > 0

    def submit(self) -> int:
        return tasks.submit(self.services, parse_task({
            "repo": REPO, "base": "main", "prompt": "Fix the command injection.",
            "outputs": [{"model": "model-x", "files": {"src/app.py": "X = 1\n"}},
                        {"model": "model-y", "files": {"src/app.py": "Y = 2\n"}}],
        }), "bench")

    def opened(self, task_id: int) -> bool:
        with self.services.storage.transaction() as session:
            task = session.get(Task, task_id)
            if task.status == "failed":
                raise SystemExit(f"task {task_id} failed: {task.failure_reason}")
            return task.status == "open"

    def judgments(self) -> int:
        with self.services.storage.transaction() as session:
            return session.scalar(select(func.count()).select_from(Judgment))

    def restart_worker_after(self, seconds: float) -> float:
        """Kill the worker `seconds` from now, start a new one at once; returns the kill's
        monotonic time."""
        time.sleep(seconds)
        kill(self.worker)
        killed = time.monotonic()
        self.worker = start_worker(self.env, self.scratch, self.scratch / "worker.log")
        return killed

    def opening(self, kill_after: float | None) -> float:
        started = time.monotonic()
        task_id = self.submit()
        if kill_after is not None:
            started = self.restart_worker_after(kill_after)
        wait_for(lambda: self.opened(task_id), f"task {task_id} to open", timeout=1800)
        titles = [i.title for i in self.emu.repo(REPO).issues.values() if i.pr and i.title.startswith(f"Task {task_id} ")]
        assert len(titles) == 2, f"task {task_id} has {len(titles)} PRs"
        return time.monotonic() - started

    def delivery(self, number: int, rater: str, kill_after: float | None) -> float:
        before = self.judgments()
        started = time.monotonic()
        self.emu.as_user(rater).comment(REPO, number, "/prefer A\nBench.")
        if kill_after is not None:
            started = self.restart_worker_after(kill_after)
        wait_for(lambda: self.judgments() > before, "the judgment", timeout=1800)
        return time.monotonic() - started

    def opening_on_two_workers(self, kill_after: float) -> float:
        """Two workers run; the one running the opening is killed `kill_after` seconds after it
        started it, and nothing is restarted: the other takes the job up once the dead one's
        heartbeat lapses (as for a worker on another machine, whose death no start notices)."""
        spare = start_worker(self.env, self.scratch, self.scratch / "spare.log")
        wait_for(lambda: any(beat.pid == spare.pid and beat.alive for beat in worker_beats(self.services.redis)),
                 "the second worker to beat")
        task_id = self.submit()
        started = self.services.queue(queue.PAIRS).started_job_registry
        wait_for(lambda: f"open-pair-{task_id}" in started.get_job_ids(cleanup=False), "the opening to start")
        time.sleep(kill_after)
        [execution] = [(job, e) for job, e in started.get_job_and_execution_ids(cleanup=False) if job == f"open-pair-{task_id}"]
        name = self.services.redis.hget(Execution(execution[1], execution[0], self.services.redis).key, "worker_name")
        pid = int(self.services.redis.hget(f"rq:worker:{name.decode()}", "pid"))
        running, self.worker = (self.worker, spare) if pid == self.worker.pid else (spare, self.worker)
        kill(running)
        killed = time.monotonic()
        wait_for(lambda: self.opened(task_id), f"task {task_id} to open", timeout=1800)
        return time.monotonic() - killed

    def close(self) -> None:
        stop(self.worker)
        self.server.__exit__(None, None, None)
        self.emu.stop()
        self.services.redis.flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added to each GitHub answer")
    parser.add_argument("--points", type=int, default=15, help="kill points in an opening")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        bench = Bench(Path(directory), args.redis_url, args.latency)
        try:
            bench.opening(kill_after=None)  # the first also fills caches (clone, tokens, config)
            unharmed = bench.opening(kill_after=None)
            print(f"an unharmed opening: {unharmed:.1f} s")
            worst = 0.0
            for point in range(1, args.points + 1):
                kill_after = unharmed * point / (args.points + 1)
                recovery = bench.opening(kill_after)
                worst = max(worst, recovery)
                print(f"opening killed {kill_after:4.1f} s in: done {recovery:5.1f} s after the kill")
            with bench.services.storage.transaction() as session:
                number = session.scalars(select(Task).where(Task.status == "open")).first().pair.side("A").pr_number
            unharmed = bench.delivery(number, bench.raters[0], kill_after=None)
            print(f"an unharmed /prefer delivery: {unharmed:.1f} s to its judgment")
            for point in range(1, 4):
                kill_after = unharmed * point / 4
                recovery = bench.delivery(number, bench.raters[point], kill_after)
                worst = max(worst, recovery)
                print(f"delivery killed {kill_after:4.1f} s in: done {recovery:5.1f} s after the kill")
            for kill_after in (0.0, 0.5, 1.0):
                recovery = bench.opening_on_two_workers(kill_after)
                worst = max(worst, recovery)
                print(f"opening killed {kill_after:4.1f} s in, a second worker running, none started: "
                      f"done {recovery:5.1f} s after the kill")
            print(f"worst: {worst:.1f} s from a worker's kill to its work done by the worker started in its place")
        finally:
            bench.close()


if __name__ == "__main__":
    main()
