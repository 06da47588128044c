"""A job whose dequeue is cut off between Redis acting and its answer arriving is run all the
same. Real Redis, through a loopback proxy that throws the answer away."""

from __future__ import annotations

import redis
from rq.exceptions import DequeueTimeout
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from tandem.infra import queue
from tests.support.tcp_proxy import TcpProxy
from workers.dequeue import TandemQueue, requeue_stranded
from workers.worker import TandemWorker


def test_a_job_whose_dequeue_answer_is_lost_is_queued_again_and_runs(redis_conn):
    webhooks = queue.queue(queue.WEBHOOKS, redis_conn)
    job = webhooks.enqueue(len, "four", job_id="delivery-lost-answer")
    kwargs = redis_conn.connection_pool.connection_kwargs
    with TcpProxy(kwargs["host"], kwargs["port"]) as proxy:
        through = redis.Redis(port=proxy.port, db=kwargs["db"], socket_timeout=5)
        through.ping()  # connected: the next answer is the dequeue's
        proxy.drop_next_reply()
        try:
            result = TandemQueue.dequeue_any(
                [queue.queue(name, through) for name in queue.ALL], 1, connection=through, serializer=JSONSerializer
            )
        except (redis.ConnectionError, DequeueTimeout):
            result = None
        through.close()
    assert (proxy.dropped, result) == (1, None)
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    assert webhooks.job_ids == []  # taken off its queue, and nobody runs it...

    assert requeue_stranded(webhooks, after=0) == []  # ...seen once: it may be a dequeue under way
    assert requeue_stranded(webhooks, after=0) == [job.id]
    assert webhooks.job_ids == [job.id]

    TandemWorker(list(queue.ALL), connection=redis_conn, serializer=JSONSerializer).work(burst=True)
    assert (job.get_status(refresh=True), job.return_value()) == (JobStatus.FINISHED, 4)
    assert redis_conn.llen(webhooks.intermediate_queue_key) == 0


def test_a_dequeue_in_progress_is_left_alone(redis_conn):
    webhooks = queue.queue(queue.WEBHOOKS, redis_conn)
    job = webhooks.enqueue(len, "four")
    result = TandemQueue.dequeue_any([webhooks], None, connection=redis_conn, serializer=JSONSerializer)
    assert result is not None and result[0].id == job.id
    # Seen in its intermediate list by passes less than STRANDED_AFTER apart: not queued again.
    assert requeue_stranded(webhooks) == requeue_stranded(webhooks) == []
    assert webhooks.job_ids == []
    # An id that left the list between two passes is forgotten: back later, it is seen afresh.
    redis_conn.lrem(webhooks.intermediate_queue_key, 1, job.id)
    requeue_stranded(webhooks, after=0)
    redis_conn.rpush(webhooks.intermediate_queue_key, job.id)
    assert requeue_stranded(webhooks, after=0) == []


def test_an_idle_worker_takes_a_job_from_any_of_its_queues(redis_conn):
    pairs = queue.queue(queue.PAIRS, redis_conn)
    job = pairs.enqueue(len, "ab")
    result = TandemQueue.dequeue_any(
        [queue.queue(name, redis_conn) for name in queue.ALL], 2, connection=redis_conn, serializer=JSONSerializer
    )
    assert result is not None and (result[0].id, result[1].name) == (job.id, queue.PAIRS)
    assert redis_conn.lrange(pairs.intermediate_queue_key, 0, -1) == [job.id.encode()]
