"""A query's result as numpy columns, without a Python object per row.

The statistics read up to millions of judgments, and building a tuple (and a Python int or str)
per value is what costs: most of the time of a plain fetch. So the queries select numbers only
(names are coded by the database, see ``queries``), every column cast to a bigint or a double
and never NULL, and on PostgreSQL the result comes through ``COPY ... TO STDOUT (FORMAT
BINARY)``: fixed-width records that numpy reads in place (``np.frombuffer``). SQLite (the
embedded database, for small deployments) is read with a plain fetch.

PostgreSQL's binary copy format: an 11-byte signature, a 32-bit flags field and a 32-bit header
extension length (and the extension), then per row a 16-bit field count and per field a 32-bit
length (-1 for NULL) and the value, big-endian; a 16-bit -1 ends it.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Float, Select, cast
from sqlalchemy.orm import Session

INT, FLOAT = np.dtype(np.int64), np.dtype(np.float64)
_HEADER = 19  # signature, flags, extension length


def integer(column: ColumnElement) -> ColumnElement:
    return cast(column, BigInteger)


def real(column: ColumnElement) -> ColumnElement:
    return cast(column, Float)


def fetch(session: Session, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
    """The query's columns, of the given kinds (INT or FLOAT; the query casts them so)."""
    if session.get_bind().dialect.name == "postgresql":
        return _copied(session, query, kinds)
    rows = session.execute(query).all()
    return [np.fromiter((row[i] for row in rows), kind, count=len(rows)) for i, kind in enumerate(kinds)]


def _copied(session: Session, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
    compiled = query.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)", compiled.params) as copy:
        data = b"".join(bytes(block) for block in copy)
    start = _HEADER + int.from_bytes(data[15:19], "big")
    record = np.dtype(
        [("fields", ">i2")]
        + [field for i, kind in enumerate(kinds) for field in ((f"size{i}", ">i4"), (f"value{i}", kind.newbyteorder(">")))]
    )
    rows = np.frombuffer(data, record, count=(len(data) - start - 2) // record.itemsize, offset=start)
    if len(rows) and ((rows["fields"] != len(kinds)).any() or any((rows[f"size{i}"] != 8).any() for i in range(len(kinds)))):
        raise ValueError("a statistics query returned a NULL or a column that is not a bigint or a double")
    return [rows[f"value{i}"].astype(kind) for i, kind in enumerate(kinds)]
