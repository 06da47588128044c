"""Reading on other connections what a session's transaction sees, so that reads run while the
session's thread works on what was read before.

On PostgreSQL the session's transaction exports its snapshot and each other connection's
transaction imports it, as ``pg_dump --jobs`` does: they all see one state of the database. A
transaction that has written cannot share what it sees (its own writes are not in the snapshot
it exports), so its reads stay on it, in order; so do SQLite's, whose connections cannot share
a snapshot.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

T = TypeVar("T")
_DONE = object()


def exported(session: Session) -> str | None:
    """The id of the session's snapshot for other connections to import, or None where they
    cannot share it (SQLite, or a transaction that has written)."""
    session.flush()  # the session's own pending writes, read in line, are read too
    if session.get_bind().dialect.name != "postgresql":
        return None
    if session.execute(text("SELECT txid_current_if_assigned()")).scalar() is not None:
        return None
    # The session waits, sending nothing, while others read in its snapshot: a server that ends
    # sessions idle in a transaction (many set idle_in_transaction_session_timeout) must not end
    # it, nor with it the snapshot, mid-read.
    session.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
    return session.execute(text("SELECT pg_export_snapshot()")).scalar_one()


@contextlib.contextmanager
def connection_in(session: Session, snapshot: str) -> Iterator[Connection]:
    """A read-only connection of its own that sees what the session's transaction sees, with
    no JIT compiling."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _outside_the_pool(engine).connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        # The first statement of the transaction; the id is the server's, not user text.
        connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        # Such reads run a query once over many rows: compiling it to machine code (JIT) costs
        # more than it saves (a tenth of a second before an incremental export's first row).
        connection.exec_driver_sql("SET LOCAL jit = off")
        try:
            yield connection
        finally:
            connection.rollback()


_OUTSIDE: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_OUTSIDE_LOCK = threading.Lock()


def _outside_the_pool(engine: Engine) -> Engine:
    """Connections to the engine's database that are not the pool's: sessions that each held one
    of the pool's and waited for another would wait for each other once the pool ran out."""
    with _OUTSIDE_LOCK:
        outside = _OUTSIDE.get(engine)
        if outside is None:
            outside = _OUTSIDE[engine] = create_engine(engine.url, poolclass=NullPool)
        return outside


def read_ahead(
    session: Session, produce: Callable[[Connection], Generator[T, None, None]], depth: int = 2
) -> Iterator[T]:
    """What ``produce`` yields, read ``depth`` items ahead in a thread of its own on a connection
    in the session's snapshot, so that the database works while the caller does. Where no other
    connection can share the snapshot (``exported``), in line, on the session's connection.

    An error in ``produce`` is raised here; a caller that stops early stops the thread."""
    snapshot = exported(session)
    if snapshot is None:
        yield from produce(session.connection())
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    reading: list = []  # the reader's driver connection, for the caller to cancel its query

    def put(item: object) -> bool:
        # Given up once the caller has stopped taking, rather than waiting for room forever.
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                items.put(item, timeout=0.1)
                return True
        return False

    def run() -> None:
        try:
            with connection_in(session, snapshot) as connection, contextlib.closing(produce(connection)) as produced:
                reading.append(connection.connection.driver_connection)
                for item in produced:
                    if not put((item, None)):
                        return
        except BaseException as exc:  # handed to the caller, raised there
            put((_DONE, exc))
        else:
            put((_DONE, None))

    reader = threading.Thread(target=run, name="read-ahead", daemon=True)
    reader.start()
    finished = False
    try:
        while True:
            item, error = items.get()
            finished = item is _DONE
            if error is not None:
                raise error
            if finished:
                return
            yield item
    finally:
        stop.set()
        # Closed where the last reference went: a collection of the garbage run by the reader
        # itself closes it there, and the reader ends on its own once it sees ``stop``.
        if threading.current_thread() is not reader:
            # Stopped early (a client gone, Ctrl-C), a query in progress is cancelled rather than
            # waited for: again until the reader ends, as one sent before the query began is lost,
            # and also while the reader is still connecting (Ctrl-C before its first batch).
            while not finished and not _joined(reader, 0.1):
                if reading:
                    with contextlib.suppress(Exception):
                        reading[0].cancel()  # thread-safe (psycopg), in every 3.x
            reader.join()


def _joined(thread: threading.Thread, timeout: float) -> bool:
    thread.join(timeout)
    return not thread.is_alive()
