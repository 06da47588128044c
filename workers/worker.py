"""`tandem worker`: jobs, the inbox relay, retries and periodic jobs, in one process that rides
out Redis restarts and whose crash delays its job by seconds, not minutes.

Jobs run in the main thread (RQ's SimpleWorker: no fork per job, so the database pool and the
GitHub clients stay warm). Beside it run threads that each outlive any one failure (`Loop`):

- the inbox relay (tandem/infra/inbox.py);
- the heartbeat (tandem/infra/liveness.py): every HEARTBEAT_EVERY seconds, RQ's worker hash and the
  started-registry entry of the running job. RQ keeps that entry for the job's timeout + 60 s,
  so a killed worker's job waited minutes; here it lapses HEARTBEAT_TTL seconds after the last
  beat;
- the maintenance: RQ's registry cleanup every MAINTAIN_EVERY seconds (RQ: every 10 minutes),
  where a job whose entry lapsed (its worker died) is queued again at once;
- RQ's scheduler (retries, periodic jobs), stepped by a thread: RQ forks it as a child that died
  on every Redis error and was started again only by the 10-minute maintenance;
- the sweep for what a crash left behind (workers/schedule.py).

RQ's work loop quits on a Redis error met outside its dequeue, and its teardown then raised,
ending the process; here the supervisor waits for Redis and starts a fresh RQ worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import redis
from rq import Queue, SimpleWorker, worker_registration
from rq.executions import Execution
from rq.job import JobStatus
from rq.registry import clean_registries
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.serializers import JSONSerializer
from rq.utils import as_text, current_timestamp, now, parse_composite_key
from rq.worker import WorkerStatus

from tandem.infra import queue
from tandem.infra import services as services_module
from tandem.infra.delivery_queue import relay_inbox
from tandem.infra.errors import ServiceUnavailable
from tandem.infra.liveness import HEARTBEAT_EVERY, HEARTBEAT_TTL, renew_leases
from tandem.infra.services import Services
from workers import schedule
from workers.dequeue import TandemQueue, put_back, requeue_stranded, when_redis_answers

log = logging.getLogger(__name__)

MAINTAIN_EVERY = 5
# RQ's cleaning lock lasts 15 minutes: a worker killed while cleaning stopped all cleanup that long.
# Cleaning takes milliseconds.
MAINTENANCE_LOCK_TTL = 15
SCHEDULER_EVERY = 1
# An RQ worker that ran this long before quitting was healthy: the next restart waits little.
HEALTHY_RUN = 60
# While Redis is away, it is asked again after 0.5 s, then less often, up to every 2 s.
REDIS_POLL_MIN, REDIS_POLL_MAX = 0.5, 2


class Loop(threading.Thread):
    """Calls `step` over and over, `every` seconds apart, until stopped. A failing step (Redis
    restarting, the database away) is logged and tried again after a growing pause."""

    def __init__(self, name: str, step: Callable[[], object], every: float = 0, max_backoff: float = 30):
        super().__init__(name=name, daemon=True)
        # (Not `_stop`: threading.Thread has a method of that name, called after every fork.)
        self._step = step
        self._every = every
        self._max_backoff = max_backoff
        self._stopping = threading.Event()

    def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception as exc:  # the loop must outlive any one failure, or its work stops for good
                log.warning("%s failed (%s); retrying in %.1f s", self.name, type(exc).__name__, backoff)
                log.debug("%s failure", self.name, exc_info=True)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.5
            self._stopping.wait(self._every)

    def stop(self) -> None:
        self._stopping.set()


class TandemWorker(SimpleWorker):
    queue_class = TandemQueue
    # Redis unreachable while dequeueing: try again at least every 5 s (RQ backs off to a minute).
    max_connection_wait_time = 5.0

    def __init__(self, queues: Sequence[str], *, stopping: threading.Event | None = None, **kwargs):
        # RQ blocks in each dequeue for worker_ttl - 15 s: 5 s, within the 10 s socket timeout of
        # the connections Tandem opened before (a longer block timed out, then backed off).
        super().__init__(queues, worker_ttl=20, **kwargs)
        self.process_stopping = stopping or threading.Event()
        self.running = False  # registered and not torn down: the heartbeat speaks for it
        self.stop_requested = False
        self.death_registered = False

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return False  # the maintenance thread runs them, whether a job is running or not

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        return HEARTBEAT_TTL  # renewed by beat() while the job runs

    def bootstrap(self, *args, **kwargs) -> None:
        super().bootstrap(*args, **kwargs)
        # Asked of Redis once, right after a job is dequeued: an error there dropped the job.
        self.get_redis_server_version()
        self.running = True

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        # RQ beats right after dequeueing a job, and quit on an error there with the job in no
        # queue and no registry: lost. A missed beat is harmless (the heartbeat thread beats).
        try:
            super().heartbeat(timeout)
        except redis.RedisError:
            log.debug("heartbeat missed", exc_info=True)

    def execute_job(self, job, rq_queue: Queue) -> None:
        try:
            execution = self.prepare_execution(job)
        except redis.RedisError:
            # Dequeued, not yet in the started registry: back to its queue as soon as Redis
            # takes it, rather than wait for the maintenance to find it stranded.
            when_redis_answers(lambda: put_back(rq_queue, job.id))
            log.warning("job %s: Redis failed as it started; queued again", job.id)
            return
        self.perform_job(job, rq_queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def prepare_job_execution(self, job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ removes the id from the intermediate list only for a one-queue worker; every
        # dequeue here moves it there (workers/dequeue.py).
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    def beat(self) -> None:
        """Renew the worker's heartbeat, its running job's started-registry entry, and the
        leases the job holds."""
        if not self.running:
            return
        renew_leases()
        executions = list(self.executions.values())
        if not executions:
            self.heartbeat()
        for execution in executions:
            self.maintain_heartbeats(execution.job, execution)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        # A SIGTERM that came before RQ's handlers (while this worker was being set up) went to
        # the process's: RQ would never hear of it, and the worker ran on until killed.
        if self.process_stopping.is_set():
            self._stop_requested = self.stop_requested = True

    def handle_warm_shutdown_request(self) -> None:
        self.stop_requested = True
        super().handle_warm_shutdown_request()

    def clean_registries(self) -> None:
        """RQ's cleanup, with the jobs of dead workers queued again at once first, and the jobs
        of dequeues cut off by a failure queued again after it."""
        for rq_queue in self.queues:
            # RQ's own lock key, so plain RQ workers on these queues take turns with us.
            if not self.connection.set(rq_queue.registry_cleaning_key, 1, nx=True, ex=MAINTENANCE_LOCK_TTL):
                continue
            try:
                for job_id in requeue_abandoned(rq_queue):
                    log.warning("job %s: its worker died; queued again", job_id)
                clean_registries(rq_queue, self._exc_handlers)
                worker_registration.clean_worker_registry(rq_queue)
                for job_id in requeue_stranded(rq_queue):
                    log.warning("job %s: its dequeue was cut off; queued again", job_id)
            finally:
                rq_queue.release_maintenance_lock()
        # RQ assigns None to it in __init__ and declares no type, so mypy takes None for its type.
        self.last_cleaned_at = now()  # type: ignore[assignment]

    def teardown(self) -> None:
        # RQ's teardown stops at the first Redis error, leaving its pub/sub thread running.
        self.running = False
        with contextlib.suppress(redis.RedisError):
            self.register_death()
            self.death_registered = True
        with contextlib.suppress(redis.RedisError):
            self.unsubscribe()
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop()


def _members(answer: Iterable[object]) -> Iterator[bytes]:
    """A sorted set's members as ZRANGE answers them without scores on RQ's connection, which does not
    decode; redis-py's type admits text and (member, score) pairs too."""
    for member in answer:
        if not isinstance(member, bytes):
            raise TypeError(f"a sorted-set member, not {type(member).__name__}")
        yield member


def requeue_abandoned(rq_queue: Queue) -> list[str]:
    """Queue again, at the front, the jobs whose started-registry entry lapsed (their worker
    stopped beating) and that have a retry left, without waiting for the retry interval: the job
    did not fail, its worker died. The retry is spent, so a job that kills its worker every time
    ends; RQ's cleanup, which runs next, fails the jobs with none left."""
    registry = rq_queue.started_job_registry
    requeued = []
    for entry in _members(rq_queue.connection.zrangebyscore(registry.key, 0, current_timestamp())):
        job = rq_queue.fetch_job(parse_composite_key(as_text(entry))[0])
        if job is None or job.get_status() != JobStatus.STARTED or not job.retries_left:
            continue
        job.retries_left -= 1
        job.started_at = job.ended_at = None
        with rq_queue.connection.pipeline() as pipe:
            rq_queue.enqueue_job(job, pipeline=pipe, at_front=True)  # (first: it starts the transaction)
            pipe.zrem(registry.key, entry)
            pipe.execute()
        requeued.append(job.id)
    return requeued


def _dead_here(connection: redis.Redis, key: str) -> bool:
    """Whether the worker or scheduler whose hash is at `key` ran on this host in a process that
    is gone. Called before this process registers its own: a hash with this process's pid is
    from an RQ worker it ran before (or from a container's previous life)."""
    hostname, pid = (as_text(value) if value else None for value in connection.hmget(key, "hostname", "pid"))
    if hostname != socket.gethostname() or not pid or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def expire_dead_here(rq_queue: Queue) -> None:
    """Let lapse now, not HEARTBEAT_TTL later, the entries of jobs whose worker ran on this host
    and died: a worker restarted at once takes them up at once."""
    connection, registry = rq_queue.connection, rq_queue.started_job_registry
    for entry in _members(connection.zrange(registry.key, 0, -1)):
        worker_name = connection.hget(Execution.from_composite_key(as_text(entry), connection).key, "worker_name")
        if worker_name and _dead_here(connection, TandemWorker.redis_worker_namespace_prefix + as_text(worker_name)):
            connection.zadd(registry.key, {entry: 0}, xx=True)


def release_dead_schedulers_here(connection: redis.Redis, queue_names: Sequence[str]) -> None:
    """Free the scheduler locks a dead scheduler on this host held; they would last 61 s more."""
    for name in queue_names:
        lock = RQScheduler.get_locking_key(name)
        holder = connection.get(lock)
        if holder and _dead_here(connection, SCHEDULER_KEY_TEMPLATE % as_text(holder)):
            release_lock(connection, lock, as_text(holder))


class Scheduler(RQScheduler):
    """RQ's scheduler, stepped by a thread of the worker instead of running in a child process."""

    def step(self) -> None:
        if self.acquired_locks != self._queue_names:
            # RQ tries again every 2 minutes; a dead scheduler's lock lapses in 61 s.
            self.acquire_locks()
        self.heartbeat()
        self.enqueue_scheduled_jobs()


class WorkerProcess:
    """The supervised `tandem worker`: threads beside a succession of RQ workers."""

    def __init__(self, services: Services, queue_names: Sequence[str]):
        self.services = services
        self.queue_names = list(queue_names)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self.worker: TandemWorker | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        connection = self.services.redis
        self._handle_stop_signals()
        release_dead_schedulers_here(connection, self.queue_names)
        scheduler = Scheduler(
            self.queue_names,
            connection=connection,
            serializer=JSONSerializer,
            logging_level=self.services.settings.log_level.upper(),  # (RQ's default: INFO)
        )
        scheduler.register_birth()
        loops = [
            Loop("inbox relay", lambda: relay_inbox(self.services, self.consumer, 1000)),
            Loop("heartbeat", self._beat, every=HEARTBEAT_EVERY, max_backoff=1),
            Loop("maintenance", lambda: self.worker and self.worker.run_maintenance_tasks(), every=MAINTAIN_EVERY),
            Loop("scheduler", scheduler.step, every=SCHEDULER_EVERY, max_backoff=5),
            Loop(
                "sweep", lambda: schedule.sweep_left_behind(self.services), every=schedule.SWEEP_EVERY.total_seconds()
            ),
        ]
        for loop in loops:
            loop.start()
        try:
            self._supervise()
        finally:
            for loop in loops:
                loop.stop()
            for loop in loops:
                loop.join(timeout=5)
            with contextlib.suppress(redis.RedisError):
                scheduler.stop()  # its locks freed, the next worker's scheduler takes over at once

    def _beat(self) -> None:
        if self.worker is not None:
            self.worker.beat()

    def _supervise(self) -> None:
        waiting, backoff = REDIS_POLL_MIN, 1.0
        while not self.stopping.is_set():
            try:
                self._prepare()
            except (ServiceUnavailable, redis.RedisError) as exc:
                log.warning("waiting for Redis (%s); trying again in %.1f s", type(exc).__name__, waiting)
                self.stopping.wait(waiting)
                waiting = min(waiting * 2, REDIS_POLL_MAX)
                continue
            waiting = REDIS_POLL_MIN
            worker = self.worker = TandemWorker(
                self.queue_names, connection=self.services.redis, serializer=JSONSerializer, stopping=self.stopping
            )
            started = time.monotonic()
            try:
                worker.work()
            except Exception:  # (a cold shutdown's SystemExit is not caught: it ends the process)
                log.warning("the RQ worker failed", exc_info=True)
            self._handle_stop_signals()
            if worker.stop_requested:
                return
            if not self._redis_answers():
                continue  # (Redis away: _prepare waits for it, and a new RQ worker starts at once)
            # RQ gave up with Redis there: start again, but not in a tight loop.
            if time.monotonic() - started > HEALTHY_RUN:
                backoff = 1.0
            log.warning("the RQ worker stopped; starting a new one in %.0f s", backoff)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 30)

    def _redis_answers(self) -> bool:
        try:
            queue.check_redis(self.services.redis)
        except ServiceUnavailable:
            return False
        return True

    def _prepare(self) -> None:
        """Before each RQ worker starts: Redis is there, the previous RQ worker is deregistered,
        the jobs it or a dead process on this host left are freed, the periodic job is scheduled
        (Redis may have lost it)."""
        queue.check_redis(self.services.redis)
        previous = self.worker
        if previous is not None and not previous.death_registered:
            previous.register_death()
            previous.death_registered = True
        for name in self.queue_names:
            expire_dead_here(self.services.queue(name))
        schedule.install(self.services)

    def _handle_stop_signals(self) -> None:
        # While no RQ worker runs (RQ installs its own handlers in work()).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())


def run(services: Services, queue_names: Sequence[str], *, burst: bool = False) -> None:
    services_module.use(services)
    if not burst:
        WorkerProcess(services, queue_names).run()
        return
    schedule.install(services)
    consumer = f"{socket.gethostname()}:{os.getpid()}"
    while relay_inbox(services, consumer):
        pass
    # RQ's own TTLs: no heartbeat thread renews this worker's entries.
    SimpleWorker(queue_names, connection=services.redis, serializer=JSONSerializer).work(
        burst=True, with_scheduler=True
    )
