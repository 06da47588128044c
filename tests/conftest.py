"""Shared fixtures: real Redis, real SQLite and PostgreSQL, and (via tests.github_emulator) GitHub.

Every test gets its own Redis database (one per xdist worker, flushed) and its own database:
a SQLite file, or a PostgreSQL schema dropped afterwards. Tests that take `storage` run on both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text

from tandem import queue
from tandem import services as services_module
from tandem.db import Base, Storage
from tandem.github import GitHubApp
from tandem.services import Services
from tandem.settings import Settings

REDIS_URL = os.environ.get("TANDEM_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("TANDEM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _redis_db(worker_id: str) -> int:
    # Database 0 is left to a developer's running Tandem; each xdist worker takes its own.
    return 1 if worker_id == "master" else 1 + int(worker_id.removeprefix("gw")) % 15


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
    url, schema = database_url
    store = Storage.from_url(url)
    Base.metadata.create_all(store.engine)
    yield store
    store.engine.dispose()


def make_settings(**values) -> Settings:
    values.setdefault("write_spacing_seconds", 0)
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


def run_jobs(services: Services, queues=queue.ALL) -> None:
    """Run every queued job in this process until the queues are empty (RQ burst mode)."""
    worker = SimpleWorker(list(queues), connection=services.redis, serializer=JSONSerializer)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
