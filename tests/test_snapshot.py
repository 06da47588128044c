"""Reading ahead on a connection of its own in the session's snapshot (tandem.infra.snapshot): it
sees what the session saw when it began, errors reach the caller, and a caller that stops early
leaves no thread or connection behind."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from sqlalchemy import Connection, create_engine, event, func, select, text

from tandem.infra import snapshot
from tandem.infra.db import Storage
from tandem.infra.models import Installation


def add_installation(session, number: int) -> None:
    session.add(Installation(id=number, account_login=f"org{number}", account_id=number, account_type="Organization"))


def installations(connection: Connection) -> int:
    return connection.scalar(select(func.count()).select_from(Installation))


def test_the_reads_ahead_see_the_database_as_the_session_saw_it_when_they_began(storage):
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in line, on the session's connection")
    committed = threading.Event()

    def produce(connection: Connection):
        yield installations(connection), threading.current_thread()
        committed.wait(timeout=10)
        yield installations(connection), threading.current_thread()

    with storage.transaction() as session:
        add_installation(session, 1)
    with storage.transaction() as session:
        reads = snapshot.read_ahead(session, produce)
        first, reader = next(reads)
        with storage.transaction() as other:
            add_installation(other, 2)
        committed.set()
        # The session (read committed) sees the new row; the reads ahead do not.
        assert installations(session.connection()) == 2
        second, _ = next(reads)
    assert (first, second) == (1, 1)
    assert reader is not threading.current_thread()


def test_a_transaction_that_has_written_reads_in_line_and_sees_its_own_writes(storage):
    def produce(connection: Connection):
        yield installations(connection), threading.current_thread()

    with storage.transaction() as session:
        add_installation(session, 1)
        assert list(snapshot.read_ahead(session, produce)) == [(1, threading.current_thread())]


def test_an_error_while_reading_ahead_reaches_the_caller(storage):
    def produce(connection: Connection):
        yield installations(connection)
        connection.exec_driver_sql("SELECT * FROM no_such_table")
        yield -1

    with storage.transaction() as session:
        reads = snapshot.read_ahead(session, produce)
        assert next(reads) == 0
        with pytest.raises(Exception, match="no_such_table"):
            next(reads)
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def test_a_caller_that_stops_early_leaves_no_reader_and_no_connection(storage):
    closed, used = threading.Event(), []

    def produce(connection: Connection):
        used.append(connection)
        try:
            while True:
                yield installations(connection)
        finally:
            closed.set()

    with storage.transaction() as session:
        reads = snapshot.read_ahead(session, produce)
        assert [next(reads) for _ in range(3)] == [0, 0, 0]
        reads.close()
        assert closed.is_set()
        # The reader's own connection is closed; in line, the session's is the session's to close.
        assert used[0].closed or used[0] is session.connection()
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def test_the_reader_needs_no_connection_of_the_sessions_pool(storage):
    """Streams that each hold one of the pool's connections and wait for a second one would wait
    for each other forever; the reader's connection is its own, outside the pool."""
    one = Storage(create_engine(storage.engine.url, pool_size=1, max_overflow=0, pool_timeout=2))

    def produce(connection: Connection):
        yield installations(connection)

    try:
        with one.transaction() as session:
            assert list(snapshot.read_ahead(session, produce)) == [0]
    finally:
        one.engine.dispose()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_reads_let_go_on_the_readers_own_thread_end_it(storage):
    """The reads are closed where their last reference goes: a collection of the garbage that the
    reading thread runs closes them there, and that thread cannot wait for itself to end."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in line, on the session's connection")
    held, dropped, ended = [], threading.Event(), threading.Event()

    def produce(connection: Connection):
        try:
            yield 1
            dropped.wait(timeout=10)
            held.clear()  # the last reference to the reads: closed here, on this thread
            yield 2
        finally:
            ended.set()

    with storage.transaction() as session:
        held.append(snapshot.read_ahead(session, produce))
        assert next(held[0]) == 1
        [reader] = [thread for thread in threading.enumerate() if thread.name == "read-ahead"]
        dropped.set()
        reader.join(timeout=10)
        assert not reader.is_alive() and ended.is_set()


def test_a_caller_that_stops_early_does_not_wait_for_the_read_in_progress(storage):
    """Closed (a client gone, Ctrl-C), the reads end now, not when the query running ends."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in line, on the session's connection")

    def produce(connection: Connection):
        yield 1
        connection.exec_driver_sql("SELECT pg_sleep(60)")
        yield 2

    with storage.transaction() as session:
        reads = snapshot.read_ahead(session, produce)
        assert next(reads) == 1
        started = time.monotonic()
        reads.close()
        assert time.monotonic() - started < 10
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def test_ctrl_c_before_the_reader_has_its_connection_does_not_wait_for_its_first_read(storage, monkeypatch):
    """Ctrl-C while the reader is still connecting: the caller cannot cancel a query yet, and
    must keep trying once there is one rather than wait for the whole first read."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in line, on the session's connection")
    main = threading.get_ident()
    checked = threading.Event()
    joined = snapshot._joined

    def counted(thread: threading.Thread, timeout: float) -> bool:
        done = joined(thread, timeout)
        checked.set()  # the caller has waited once for the reader, which is still connecting
        return done

    monkeypatch.setattr(snapshot, "_joined", counted)
    # Python's own Ctrl-C: an RQ worker run earlier in this process leaves its handler installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def connecting(*_args) -> None:
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C while the caller waits for the first batch
        checked.wait(timeout=10)

    def produce(connection: Connection):
        connection.exec_driver_sql("SELECT pg_sleep(30)")
        yield 1

    outside = snapshot._outside_the_pool(storage.engine)
    event.listen(outside, "connect", connecting)
    try:
        with storage.transaction() as session:
            reads = snapshot.read_ahead(session, produce)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                next(reads)
            assert time.monotonic() - started < 15
    finally:
        event.remove(outside, "connect", connecting)
        signal.signal(signal.SIGINT, previous)
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def test_the_session_waiting_for_its_reads_ahead_is_not_ended_as_idle(storage):
    """While the reader reads, the session that exported the snapshot sends nothing: a server
    that ends sessions idle in a transaction (idle_in_transaction_session_timeout, which many set)
    must not end it mid-export."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in line, on the session's connection")

    def produce(connection: Connection):
        connection.exec_driver_sql("SELECT pg_sleep(1.5)")
        yield installations(connection)

    with storage.transaction() as session:
        session.execute(text("SET idle_in_transaction_session_timeout = '500ms'"))
        try:
            assert list(snapshot.read_ahead(session, produce)) == [0]
            assert installations(session.connection()) == 0
        finally:
            session.execute(text("RESET idle_in_transaction_session_timeout"))
