"""A query's result as numpy columns, without a Python object per row.

The statistics read up to millions of judgments, and building a tuple (and a Python int or str)
per value is what costs: most of the time of a plain fetch. So the queries select numbers only
(names are coded by the database, see ``queries``), every column cast to a bigint or a double
and never NULL, and on PostgreSQL each column comes as one array (``array_agg``) through ``COPY
... TO STDOUT (FORMAT BINARY)``: fixed-width elements that numpy reads in place
(``np.frombuffer``). SQLite (the embedded database, for small deployments) is read with a plain
fetch.

PostgreSQL's binary copy format: an 11-byte signature, a 32-bit flags field and a 32-bit header
extension length (and the extension), then per row a 16-bit field count and per field a 32-bit
length (-1 for NULL) and the value, big-endian (an array's layout is described where it is read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Float, Select, SQLColumnExpression, cast, func, select
from sqlalchemy.orm import Session

from tandem.infra.errors import known

# Kinds of column: all travel as bigints or doubles; SMALL (codes of a few values) is kept in a
# byte once read.
INT, FLOAT, SMALL = np.dtype(np.int64), np.dtype(np.float64), np.dtype(np.int8)
_HEADER = 19  # signature, flags, extension length


def integer(column: SQLColumnExpression[Any]) -> ColumnElement[int]:
    return cast(column, BigInteger)


def real(column: ColumnElement) -> ColumnElement:
    return cast(column, Float)


def fetch(session: Session, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
    """The query's columns, of the given kinds (INT, SMALL or FLOAT; the query casts them to a
    bigint or a double)."""
    if session.get_bind().dialect.name == "postgresql":
        return _copied(session, query, kinds)
    rows = session.execute(query).all()
    return [np.fromiter((row[i] for row in rows), kind, count=len(rows)) for i, kind in enumerate(kinds)]


def _copied(session: Session, query: Select, kinds: list[np.dtype]) -> list[np.ndarray]:
    # One row of arrays (array_agg), not a row per result: the client reads a copied row at a
    # time, and a million of them cost seconds in Python alone. The aggregates of one query see
    # the rows in one order, so the arrays line up.
    rows = query.subquery()
    aggregated = select(*(func.array_agg(column) for column in rows.c))
    compiled = aggregated.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    cursor = known(session.connection().connection.driver_connection, "the database connection").cursor()
    with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)", compiled.params) as copy:
        blocks = list(copy)
    # The one row usually comes in one block: read in place, not copied.
    data = blocks[0] if len(blocks) == 1 else b"".join(blocks)
    at = _HEADER + int.from_bytes(data[15:19], "big") + 2  # and the row's field count
    found = []
    for kind in kinds:
        size = int.from_bytes(data[at : at + 4], "big", signed=True)
        at += 4
        if size < 0:  # array_agg of no rows is NULL
            found.append(np.zeros(0, kind))
            continue
        # An array: dimensions, a has-NULLs flag, the element type, each dimension's length and
        # lower bound; then each element as a 32-bit length and the value.
        dimensions, has_nulls = int.from_bytes(data[at : at + 4], "big"), int.from_bytes(data[at + 4 : at + 8], "big")
        if dimensions != 1 or has_nulls:
            raise ValueError("a statistics query returned a NULL")
        count = int.from_bytes(data[at + 12 : at + 16], "big")
        element = np.dtype([("size", ">i4"), ("value", ">f8" if kind == FLOAT else ">i8")])
        values = np.frombuffer(data, element, count=count, offset=at + 20)
        if (values["size"] != 8).any():
            raise ValueError("a statistics query returned a column that is not a bigint or a double")
        found.append(values["value"].astype(kind))
        at += size
    return found
