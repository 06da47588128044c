"""Shared fixtures: real Redis, real SQLite and PostgreSQL, and (via tandem.sandbox.github) GitHub.

Every test gets its own Redis database (one per xdist worker, flushed) and its own database:
a SQLite file, or a PostgreSQL schema dropped afterwards. Tests that take `storage` run on both.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text

from app.main import create_app
from tandem.infra import outbox, queue
from tandem.infra import services as services_module
from tandem.infra.db import Base, Storage
from tandem.infra.delivery_queue import relay_inbox
from tandem.infra.github import GitHubApp
from tandem.infra.services import Services
from tandem.infra.settings import Settings
from tests.servers import LiveServer

# The tests empty Redis databases 1-11, so they never pick a Redis themselves: scripts/test starts
# one of its own and sets this; to run pytest directly, point it at a Redis you can spare.
REDIS_URL = os.environ.get("TANDEM_TEST_REDIS_URL", "")
POSTGRES_URL = os.environ.get("TANDEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config) -> None:
    if not REDIS_URL:
        raise pytest.UsageError(
            "TANDEM_TEST_REDIS_URL is not set. The tests empty Redis databases 1-11, so they do not "
            "default to a Redis a running Tandem may use: run scripts/test (it starts a Redis of its own), "
            "or set TANDEM_TEST_REDIS_URL=redis://127.0.0.1:PORT to a Redis you can spare."
        )


def _redis_db(worker_id: str) -> int:
    # Database 0 is left to a developer's running Tandem, 12-14 to the benchmarks; a plain run
    # takes 1 and each xdist worker one of 2-11.
    return 1 if worker_id == "master" else 2 + int(worker_id.removeprefix("gw")) % 10


@pytest.fixture
def redis_url(worker_id) -> str:
    return f"{REDIS_URL}/{_redis_db(worker_id)}"


@pytest.fixture
def redis_conn(redis_url) -> Iterator[redis.Redis]:
    connection = queue.connect(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture(scope="session")
def postgres_admin():
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tandem.db'}", None
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def storage(database_url) -> Iterator[Storage]:
    url, _schema = database_url
    store = Storage.from_url(url)
    Base.metadata.create_all(store.engine)
    yield store
    store.engine.dispose()


def make_settings(**values) -> Settings:
    # The write budget has tests of its own; elsewhere it must not slow the suite down.
    values.setdefault("write_spacing_seconds", 0)
    values.setdefault("writes_per_minute", 1_000_000)
    values.setdefault("writes_per_hour", 1_000_000)
    values.setdefault("job_retry_intervals", [0, 0, 0])
    values.setdefault("max_inline_wait_seconds", 3)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url, redis_url, tmp_path) -> Settings:
    return make_settings(
        database_url=database_url[0],
        redis_url=redis_url,
        webhook_secret="test-webhook-secret",
        env_file=tmp_path / ".env",
        git_cache_dir=tmp_path / "git-cache",
    )


@pytest.fixture
def services(settings, storage, redis_conn) -> Iterator[Services]:
    current = Services(settings=settings, storage=storage, redis=redis_conn, github=GitHubApp(settings, redis_conn))
    services_module.use(current)
    yield current
    services_module.use(None)


def settle(emu, services: Services, rounds: int = 10) -> None:
    """Deliver pending webhooks and run the jobs they cause, until nothing more happens."""
    for _ in range(rounds):
        emu.drain()
        relay(services)
        if not any(services.queue(name).count for name in queue.ALL) and not windows_end(services):
            return
        run_jobs(services)
    raise AssertionError("webhooks and jobs did not settle")


def windows_end(services: Services) -> int:
    """The coalescing windows (tandem.infra.outbox) end: their scheduled jobs are queued. Jobs
    scheduled for later than a window (waiting out a rate limit) stay scheduled."""
    q = services.queue(queue.PAIRS)
    registry = ScheduledJobRegistry(queue=q)
    window_end = time.time() + services.settings.pair_sync_window_seconds
    due = [
        job
        for job_id in registry.get_job_ids()
        if registry.get_scheduled_time(job_id).timestamp() <= window_end
        and (job := q.fetch_job(job_id)) is not None
        and outbox.COALESCED in job.meta
    ]
    for job in due:
        registry.remove(job.id)
        q.enqueue_job(job)
    return len(due)


def relay(services: Services) -> int:
    """Turn every delivery waiting in the inbox into a job, as `tandem worker` does."""
    moved = 0
    while batch := relay_inbox(services, "test-relay"):
        moved += batch
    return moved


def processed_runs(caplog) -> Counter[str]:
    """How many times each delivery's effects were committed, from its job's log line (jobs of
    processed deliveries keep no result). Needs caplog at INFO for workers.deliveries."""
    return Counter(
        record.args[0]
        for record in caplog.records
        if record.name == "workers.deliveries" and record.msg.startswith("delivery %s processed")
    )


def run_jobs(services: Services, queues=queue.ALL) -> None:
    """Relay the inbox, then run every queued job in this process until the queues are empty."""
    relay(services)
    worker = SimpleWorker(list(queues), connection=services.redis, serializer=JSONSerializer)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")


# --- GitHub, emulated -------------------------------------------------------------------------

MIRROR_CONFIG = """\
mirror: true
raters:
  users: [rater-one, rater-two]
  teams: [raters]
reviewers: [reviewer-one]
rubric:
  axes: [correctness, security, reliability, maintainability]
  scale: [1, 5]
raters_per_task: 2
"""

MIRROR_FILES = {
    ".github/tandem.yml": MIRROR_CONFIG,
    "README.md": "# mlflow mirror\n",
    "src/app.py": (
        "import subprocess\n\n\ndef install(package):\n    subprocess.run(f'pip install {package}', shell=True)\n"
    ),
    "src/old_name.py": "VALUE = 1\n",
    "src/obsolete.py": "print('bye')\n",
    "scripts/run.sh": "echo run\n",
    "assets/logo.bin": bytes(range(256)),
}


class BlindingAudit:
    """Secrets (model names, metadata values) of the tasks a test submitted; at the end of each
    test everything the app sent the emulator, and every ref and commit in its repositories, is
    scanned for them. Run for every test that uses the `github` fixture: the whole suite."""

    def __init__(self):
        self.secrets: set[str] = set()

    def add_task(self, task: dict) -> None:
        for output in task.get("outputs", []):
            self.secrets.add(output["model"])
        self.secrets.update(task.get("models") or ())
        for value in (task.get("metadata") or {}).values():
            if isinstance(value, str) and len(value) >= 4:
                self.secrets.add(value)

    def scan(self, emu) -> list[str]:
        import subprocess

        found = []
        for request in emu.requests:
            text = " ".join([request.path, str(request.query), request.body.decode(errors="replace")])
            found += [f"{request.method} {request.path}: {s}" for s in self.secrets if s in text]
        for git_dir in sorted(Path(emu.root).rglob("*.git")):
            if not (git_dir / "HEAD").exists():
                continue
            listing = subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(git_dir),
                    "log",
                    "--all",
                    "--format=%H %an <%ae> %cn <%ce>%n%B",
                    "--decorate=full",
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            refs = subprocess.run(
                ["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname)"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            found += [f"{git_dir.name}: {s}" for s in self.secrets if s in listing or s in refs]
        return found


@pytest.fixture
def blinding() -> BlindingAudit:
    return BlindingAudit()


@pytest.fixture
def emulator(tmp_path):
    from tandem.sandbox.github import GitHubEmulator

    emu = GitHubEmulator(root=tmp_path / "github")
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def github(emulator, services, blinding):
    """GitHub with Tandem registered, installed on evals-org, and a mirror evals-org/mlflow."""
    app = emulator.register_app(slug="tandem", name="Tandem", webhook_secret="test-webhook-secret")
    services.settings.app_id = app.id
    services.settings.private_key = SecretStr(app.private_key_pem)
    services.settings.github_api_url = emulator.url
    services.settings.github_url = emulator.url
    emulator.create_org("evals-org")
    for login in ("rater-one", "rater-two", "rater-three", "reviewer-one", "outsider"):
        emulator.create_user(login)
        emulator.add_org_member("evals-org", login)
    emulator.create_team("evals-org", "raters", members=["rater-three"])
    emulator.create_repository("evals-org", "mlflow", files=MIRROR_FILES, default_branch="main")
    emulator.create_repository("evals-org", "not-a-mirror", files={"README.md": "hi\n"}, default_branch="main")
    with LiveServer(create_app(services)) as server:
        emulator.set_webhook(f"{server.url}/webhooks/github")
        installation = emulator.install_app("evals-org", repositories="all")
        # The installation webhook is what tells Tandem where it is installed.
        settle(emulator, services)
        emulator.installation = installation
        yield emulator
    leaks = blinding.scan(emulator)
    assert not leaks, f"model names or metadata reached GitHub: {leaks}"


def tandem_env(services: Services, tmp_path: Path) -> dict[str, str]:
    """The environment `tandem ...` processes run with, configured for this test's GitHub, database
    and Redis (whose schema is stamped as migrated: the test made it from the models)."""
    from alembic import command

    from tandem.infra import migrate

    with services.storage.engine.begin() as connection:
        command.stamp(migrate._config(connection), "head")
    settings = services.settings
    return {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_APP_ID": str(settings.app_id),
        "TANDEM_PRIVATE_KEY": settings.private_key.get_secret_value(),
        "TANDEM_WEBHOOK_SECRET": settings.webhook_secret.get_secret_value(),
        "TANDEM_GITHUB_API_URL": settings.github_api_url,
        "TANDEM_DATABASE_URL": settings.database_url,
        "TANDEM_REDIS_URL": settings.redis_url,
        "TANDEM_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
    }


def small_task(blinding: BlindingAudit, **overrides) -> dict:
    """A small task on the mirror (two whole-file outputs); its secrets go to the blinding audit."""
    data = {
        "repo": "evals-org/mlflow",
        "base": "main",
        "prompt": "Fix the command injection.",
        "outputs": [
            {"model": "model-x-2026-10", "files": {"src/app.py": "X = 1\n"}},
            {"model": "model-y-2026-09", "files": {"src/app.py": "Y = 2\n"}},
        ],
        "metadata": {"source": "internal-suite-7"},
    } | overrides
    blinding.add_task(data)
    return data


def submit_task(services: Services, blinding: BlindingAudit, **overrides) -> int:
    from tandem.domain import tasks
    from tandem.domain.task_spec import parse_task

    return tasks.submit(services, parse_task(small_task(blinding, **overrides)), "test")


@pytest.fixture
def pair(github, services, blinding) -> dict:
    """An open pair on evals-org/mlflow: {"task_id", "A": PR number, "B": PR number, "models": {side: model}}."""
    from tandem.infra.models import Task

    task_id = submit_task(services, blinding)
    settle(github, services)
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "open", task.failure_reason
        found: dict = {side.letter: side.pr_number for side in task.pair.sides}
        found["models"] = {side.letter: side.output.model for side in task.pair.sides}
        found["heads"] = {side.letter: side.head_sha for side in task.pair.sides}
    return found | {"task_id": task_id}
