"""An outage of the database or of Redis, real from the client's side (a loopback proxy that
refuses connections, a database file gone): every delivery answered 202 waits it out, however
long it lasts, spending none of its retries, and is processed exactly once afterwards."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis
import sqlalchemy
from rq import SimpleWorker
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy.engine import make_url

from app.main import create_app
from tandem.infra import delivery_queue, outages, queue, readiness
from tandem.infra.db import Storage
from tandem.infra.models import DeadLetter, ProcessedDelivery, Repository
from tests.conftest import processed_runs, relay, run_jobs
from tests.servers import LiveServer
from tests.support.deliveries import INSTALLATION, deliver, repositories_added
from tests.support.scheduled import scheduled_jobs, time_passes
from tests.support.tcp_proxy import TcpProxy
from workers import deliveries

HOUR = 3600


@contextlib.contextmanager
def database_outage(services, database_url):
    """Yields `down(bool)`: while down, the jobs' database refuses every connection."""
    url, _schema = database_url
    if url.startswith("sqlite"):
        # The database file's directory goes away (an unmounted volume): connecting fails.
        path = make_url(url).database
        here, away = path.rsplit("/", 1)[0], path.rsplit("/", 1)[0] + "-away"

        def down(yes: bool) -> None:
            services.storage.engine.dispose()
            os.rename(*(here, away) if yes else (away, here))

        yield down
        return
    with TcpProxy("127.0.0.1", make_url(url).port or 5432) as proxy:
        direct = services.storage
        services.storage = Storage.from_url(make_url(url).set(port=proxy.port).render_as_string(hide_password=False))
        try:
            yield lambda yes: proxy.refuse() if yes else proxy.restore()
        finally:
            services.storage.engine.dispose()
            services.storage = direct


def failed_jobs(services) -> int:
    return sum(services.queue(name).failed_job_registry.count for name in queue.ALL)


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_deliveries_accepted_during_an_hour_long_database_outage_are_each_processed_once(
    services, database_url, caplog
):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    total = 500 if database_url[0].startswith("postgresql") else 60
    retries = len(services.settings.job_retry_intervals)
    sent: list[str] = []
    accepted = 0
    with (
        database_outage(services, database_url) as down,
        LiveServer(create_app(services)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        down(True)
        simulated = 0.0  # seconds of outage: the clock jumps to when the last waiting job is due
        rounds = 0
        while simulated < HOUR or len(sent) < total:
            for _ in range(min(total - len(sent), total // 15 + 1)):
                delivery_id = str(uuid.uuid4())
                sent.append(delivery_id)
                response = deliver(client, "installation_repositories", repositories_added(len(sent)), delivery_id)
                accepted += response.status_code == 202
            run_jobs(services)
            waiting = scheduled_jobs(services, queue.WEBHOOKS)
            assert failed_jobs(services) == 0, "a delivery failed during the outage"
            assert len(waiting) == len(sent), "every delivery waits, none is lost"
            assert {job.retries_left for job, _when in waiting} == {retries}, "waiting spent a retry"
            simulated += max((when - datetime.now(UTC)).total_seconds() for _job, when in waiting)
            time_passes(services, queue.WEBHOOKS)
            rounds += 1
        down(False)
        for _ in range(10):  # the outage is over: the waiting jobs come due and run
            run_jobs(services)
            if not scheduled_jobs(services, queue.WEBHOOKS):
                break
            time_passes(services, queue.WEBHOOKS)

    runs = processed_runs(caplog)
    with services.storage.transaction() as session:
        processed = {row.delivery_id for row in session.query(ProcessedDelivery)}
        repositories = session.query(Repository).filter_by(installation_id=INSTALLATION).count()
        parked = session.query(DeadLetter).count()
    lost = set(sent) - processed
    duplicated = sum(count - 1 for count in runs.values() if count > 1)
    print(
        f"\n{make_url(database_url[0]).get_backend_name()} outage of {simulated / 60:.0f} simulated minutes "
        f"({rounds} rounds): "
        f"delivered {len(sent)}, accepted {accepted}, processed {len(processed & set(sent))}, "
        f"lost {len(lost)}, duplicated {duplicated}"
    )
    assert accepted == len(sent) == total
    assert not lost and processed == set(sent)
    assert duplicated == 0 and set(runs) == set(sent)
    assert repositories == total and parked == 0
    assert failed_jobs(services) == 0 and not scheduled_jobs(services, queue.WEBHOOKS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_redis_outage_inside_a_job_is_waited_out(services, redis_url, caplog):
    """The worker's own connection stays up; the job's Redis resets its next connections: the
    job waits (in place, since it cannot reschedule itself without Redis), then is rescheduled
    with its retries whole, and processed once."""
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    services.settings.outage_wait_seconds = 0.001
    delivery_id = str(uuid.uuid4())
    delivery_queue.accept_delivery(
        services, delivery_id, "installation_repositories", "added", json.loads(repositories_added(1))
    )
    relay(services)
    direct = services.redis
    with TcpProxy("127.0.0.1", direct.connection_pool.connection_kwargs["port"]) as proxy:
        db = direct.connection_pool.connection_kwargs["db"]
        services.redis = redis.Redis.from_url(f"redis://127.0.0.1:{proxy.port}/{db}")
        proxy.reset_next(12)
        try:
            worker = SimpleWorker([queue.WEBHOOKS], connection=direct, serializer=JSONSerializer)
            worker.work(burst=True, with_scheduler=False)
        finally:
            services.redis.close()
            services.redis = direct
        assert proxy.resets == 12, "the job met the outage"
    [(job, _when)] = scheduled_jobs(services, queue.WEBHOOKS)
    assert job.retries_left == len(services.settings.job_retry_intervals)
    assert failed_jobs(services) == 0
    time_passes(services, queue.WEBHOOKS)
    run_jobs(services)
    assert processed_runs(caplog) == {delivery_id: 1}
    assert failed_jobs(services) == 0 and not scheduled_jobs(services, queue.WEBHOOKS)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_outage_is_told_from_a_failure(services, database_url, redis_url):
    def raised(call) -> BaseException:
        with pytest.raises(Exception) as info:
            call()
        return info.value

    url = make_url(database_url[0])
    with TcpProxy("127.0.0.1", url.port or 5432) as proxy:
        engine = sqlalchemy.create_engine(url.set(port=proxy.port, drivername="postgresql+psycopg"))
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
            proxy.refuse()  # the server goes away under an open connection, then refuses new ones
            assert outages.is_unavailable(raised(lambda: connection.execute(sqlalchemy.text("SELECT 1"))))
        assert outages.is_unavailable(raised(engine.connect))
        engine.dispose()
    with services.storage.engine.connect() as connection:
        assert not outages.is_unavailable(raised(lambda: connection.execute(sqlalchemy.text("SELEC 1"))))
    with services.storage.engine.connect() as connection:  # a cancelled query: an OperationalError, not an outage
        connection.execute(sqlalchemy.text("SET statement_timeout = 1"))
        error = raised(lambda: connection.execute(sqlalchemy.text("SELECT pg_sleep(1)")))
        assert isinstance(error, sqlalchemy.exc.OperationalError) and not outages.is_unavailable(error)
    assert outages.is_unavailable(raised(redis.Redis(port=1, socket_connect_timeout=1).ping))
    assert not outages.is_unavailable(raised(lambda: services.redis.execute_command("NO-SUCH-COMMAND")))
    assert not outages.is_unavailable(raised(lambda: {}["installation"]))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sweep_queues_again_a_delivery_job_that_failed_unprocessed(services, caplog):
    """A worker killed under a delivery job on its last try leaves it in RQ's failed registry:
    the periodic sweep queues it again (its retries renewed), and parks it once it has done so
    MAX_SWEEPS times."""
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    services.settings.job_retry_intervals = []

    def killed_under(delivery_id: str) -> None:
        worker = SimpleWorker([queue.WEBHOOKS], connection=services.redis, serializer=JSONSerializer)
        job, _queue = worker.dequeue_job_and_maintain_ttl(timeout=1)
        assert job.id == f"delivery-{delivery_id}"
        worker.prepare_execution(job)
        worker.prepare_job_execution(job)
        # The worker is gone: RQ's cleanup finds the job abandoned, with no retry left.
        StartedJobRegistry(queue=services.queue(queue.WEBHOOKS)).cleanup(time.time() + 10 * HOUR)

    delivery_id = str(uuid.uuid4())
    delivery_queue.accept_delivery(
        services, delivery_id, "installation_repositories", "added", json.loads(repositories_added(1))
    )
    relay(services)
    killed_under(delivery_id)
    assert services.queue(queue.WEBHOOKS).failed_job_registry.get_job_ids() == [f"delivery-{delivery_id}"]
    assert readiness.delivery_warnings(services) == [  # what `tandem doctor` says
        "1 failed jobs in RQ's failed registries (webhooks: 1); failed deliveries are queued again by the "
        "worker's periodic sweep"
    ]

    assert deliveries.requeue_failed(services) == [f"queued failed delivery {delivery_id} again"]
    run_jobs(services)
    assert processed_runs(caplog) == {delivery_id: 1}
    assert failed_jobs(services) == 0

    # One that keeps failing is parked, with its error, after the sweep tried it MAX_SWEEPS times.
    stubborn = str(uuid.uuid4())
    delivery_queue.accept_delivery(
        services, stubborn, "installation_repositories", "added", json.loads(repositories_added(2))
    )
    relay(services)
    for _sweep in range(deliveries.MAX_SWEEPS):
        killed_under(stubborn)
        assert deliveries.requeue_failed(services) == [f"queued failed delivery {stubborn} again"]
    killed_under(stubborn)
    assert deliveries.requeue_failed(services) == [f"parked delivery {stubborn}: it kept failing"]
    assert failed_jobs(services) == 0
    with services.storage.transaction() as session:
        letter = session.get(DeadLetter, stubborn)
        assert letter.kind == "failed" and "AbandonedJobError" in letter.reason
    assert deliveries.requeue_failed(services) == []
