"""A query's result as numpy columns, without a Python object per row.

The statistics read up to millions of judgments, and building a tuple (and a Python int or str)
per value is what costs: most of the time of a plain fetch. So the queries select numbers only
(names are coded by the database, see ``queries``; small codes several to a bigint, see
``packed``), every column cast to a bigint or a double and never NULL, and on PostgreSQL the
columns come as arrays (``array_agg``, a copied row of arrays per span of ids) through ``COPY ...
TO STDOUT (FORMAT BINARY)``: fixed-width elements that numpy reads in place (``np.frombuffer``),
several queries at once (``Reader``). SQLite (the embedded database, for small deployments) is
read with a plain fetch.

PostgreSQL's binary copy format: an 11-byte signature, a 32-bit flags field and a 32-bit header
extension length (and the extension), then per row a 16-bit field count and per field a 32-bit
length (-1 for NULL) and the value, big-endian (an array's layout is described where it is read).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Select,
    SQLColumnExpression,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from tandem.infra import snapshot
from tandem.infra.errors import known

# Kinds of column: all travel as bigints or doubles; SMALL (codes of a few values) is kept in a
# byte once read.
INT: np.dtype = np.dtype(np.int64)
FLOAT: np.dtype = np.dtype(np.float64)
SMALL: np.dtype = np.dtype(np.int8)
_HEADER = 19  # signature, flags, extension length
CHUNK = 1 << 16  # ids per copied row of arrays
CONNECTIONS = 4  # reads at once: one per query of the statistics


def integer(column: SQLColumnExpression[Any]) -> ColumnElement[int]:
    return cast(column, BigInteger)


def real(column: ColumnElement) -> ColumnElement:
    return cast(column, Float)


def packed(*codes: ColumnElement[int]) -> ColumnElement[int]:
    """Small codes (-1 to 126) as one bigint, a byte each: each column copied costs the database
    an aggregate, and one column of seven codes costs it a seventh. ``unpacked`` reads them."""
    if len(codes) > 7:
        raise ValueError("a bigint holds seven codes")
    return sum(((integer(code) + 1) * (1 << (8 * i)) for i, code in enumerate(codes)), start=integer(literal(0)))


def unpacked(column: np.ndarray, count: int) -> list[np.ndarray]:
    """The ``count`` codes ``packed`` put in each value of ``column``."""
    return [((column >> (8 * i)) & 0xFF).astype(np.int8) - np.int8(1) for i in range(count)]


class Reader:
    """Reads queries as numpy columns, on PostgreSQL all at once: each query's copy on a
    connection of its own, in a thread (the client waits on the network, the server works in a
    process per connection, so the reads share the machine's cores), all of them in the
    session's snapshot, so they see one state of the database (tandem.infra.snapshot). A
    transaction that has written, or SQLite, is read by itself, in order.

    ``fetch`` gives a future; its result is the query's columns, of the given kinds (INT, SMALL or
    FLOAT; the query casts them to a bigint or a double). The first is an id (of the row, its
    round...), numbered densely by the database: it groups the rows for the copy."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._pool: ThreadPoolExecutor | None = None
        self._snapshot = ""
        if session.get_bind().dialect.name == "postgresql":
            # Each query runs once over many rows: compiling it to machine code (JIT) costs more
            # than it saves.
            session.execute(text("SET LOCAL jit = off"))
            self._snapshot = snapshot.exported(session) or ""
            if self._snapshot:
                self._pool = ThreadPoolExecutor(max_workers=CONNECTIONS, thread_name_prefix="statistics")

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def fetch(self, query: Select, kinds: list[np.dtype]) -> Future[list[np.ndarray]]:
        if self._pool is not None:
            return self._pool.submit(self._in_snapshot, query, kinds)
        found: Future[list[np.ndarray]] = Future()
        if self.session.get_bind().dialect.name == "postgresql":
            found.set_result(_copied(self.session.connection(), query, kinds))
        else:
            rows = self.session.execute(query).all()
            found.set_result([np.fromiter((row[i] for row in rows), kind, len(rows)) for i, kind in enumerate(kinds)])
        return found

    def _in_snapshot(self, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
        with snapshot.connection_in(self.session, self._snapshot) as connection:
            return _copied(connection, query, kinds)


def _copied(connection: Connection, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
    # Rows of arrays (array_agg of the rows whose first column, an id, is in one span of CHUNK
    # ids), not a row per result: the client reads a copied row at a time, and a million of
    # them cost seconds in Python alone; nor one row of whole columns, which the client library
    # would hold twice over (its buffer and the row). Grouped by the id rather than numbered
    # (row_number()), which costs the database half as much again. The aggregates of one group
    # see its rows in one order, so the arrays line up.
    rows = query.subquery()
    first = next(iter(rows.c))
    aggregated = select(*(func.array_agg(column) for column in rows.c)).group_by(first // CHUNK)
    compiled = aggregated.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    cursor = known(connection.connection.driver_connection, "the database connection").cursor()
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    pending, header = bytearray(), True
    with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)", compiled.params) as copy:
        for block in copy:
            pending += block
            if header and len(pending) >= _HEADER and len(pending) >= (size := _HEADER + _int(pending[15:19])):
                del pending[:size]
                header = False
            if header:
                continue
            while (row := _row_size(pending)) is not None:
                for part, column in zip(parts, _arrays(memoryview(pending)[:row], kinds), strict=True):
                    part.append(column)
                del pending[:row]
    if header or bytes(pending) != b"\xff\xff":  # the trailer
        raise ValueError("a statistics query's copy ended early")
    return [np.concatenate(part) if part else np.zeros(0, kind) for part, kind in zip(parts, kinds, strict=True)]


def _int(data) -> int:
    return int.from_bytes(data, "big", signed=True)


def _row_size(data: bytearray) -> int | None:
    """The size of the copied row at the start of ``data``, or None while not all of it is there
    (or at the trailer): a 16-bit field count, then each field's 32-bit size and value."""
    if len(data) < 2 or data[:2] == b"\xff\xff":
        return None
    at = 2
    for _ in range(_int(data[:2])):
        if len(data) < at + 4:
            return None
        at += 4 + max(_int(data[at : at + 4]), 0)
    return at if len(data) >= at else None


def _arrays(row: memoryview, kinds: list[np.dtype]) -> list[np.ndarray]:
    """The arrays of one copied row, as the given kinds."""
    at, found = 2, []
    for kind in kinds:
        size = _int(row[at : at + 4])
        at += 4
        # An array: dimensions, a has-NULLs flag, the element type, each dimension's length and
        # lower bound; then each element as a 32-bit length and the value.
        dimensions, has_nulls = _int(row[at : at + 4]), _int(row[at + 4 : at + 8])
        if size < 0 or dimensions != 1 or has_nulls:
            raise ValueError("a statistics query returned a NULL")
        count = _int(row[at + 12 : at + 16])
        element = np.dtype([("size", ">i4"), ("value", ">f8" if kind == FLOAT else ">i8")])
        values = np.frombuffer(row, element, count=count, offset=at + 20)
        if (values["size"] != 8).any():
            raise ValueError("a statistics query returned a column that is not a bigint or a double")
        found.append(values["value"].astype(kind))
        at += size
    return found
