"""Reading many rows cheaply, as the export does.

Conditions for a batch of keys have statement text that is the same for every batch: on
PostgreSQL the keys go as array parameters, so the driver parses the statement once and the
server plans it quickly, however many keys there are (a parameter per key would make every batch
a new, long statement). Columns come as plain values (``plain``) and rows as the driver's tuples
(``tuples``) or as dicts (``dicts``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Connection,
    Enum,
    Integer,
    Select,
    String,
    and_,
    any_,
    cast,
    func,
    literal,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from tandem.infra.db import UTCDateTime, iso_text


def plain(*columns) -> list:
    """The columns as an export writes them, with no conversion left to Python: times as ISO text
    (``iso_text``) and ``one_of`` values as their strings; each keeps its name."""
    found: list = []
    for column in columns:
        if isinstance(column.type, UTCDateTime):
            found.append(iso_text(column).label(column.name))
        elif isinstance(column.type, Enum):
            found.append(type_coerce(column, String).label(column.name))
        else:
            found.append(column)
    return found


def tuples(result: CursorResult) -> Sequence[tuple]:
    """The rows of ``result`` as the driver gives them, plain tuples, with none of SQLAlchemy's
    processing: making and unpacking its Row objects cost more than the rest of an export's reads
    of scores and reviews. Only for columns that need no conversion in Python (``plain`` ones,
    integers, text; not JSON)."""
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def batches(result: CursorResult, first: int, size: int) -> Iterator[Sequence[tuple]]:
    """The rows of a streamed ``result`` (``yield_per``) in lists of driver tuples, as for
    ``tuples``: the first of ``first`` rows, then of ``size``. Through the result's own fetching,
    which holds the rows it read ahead."""
    try:
        wanted = first
        # The strategy is looked up each time: the result swaps it for an empty one once the
        # cursor is spent and closed.
        while batch := result.cursor_strategy.fetchmany(result, result.cursor, wanted):
            yield batch
            wanted = size
    finally:
        # A connection SQLAlchemy closed (a statement on it was interrupted: Ctrl-C) closed its
        # cursors already; closing this one again was logged with a traceback.
        if not result.context.root_connection.invalidated:
            result.close()


def dicts(result: CursorResult) -> list[dict[str, Any]]:
    """The rows of ``result`` (as for ``tuples``) as dicts: reading a dict's key costs a tenth of
    a Row's attribute, which matters for code that reads every field of millions of rows."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in tuples(result)]


def _postgres(bind: Session | Connection) -> bool:
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "postgresql"


def _array(values: Collection, element_type) -> ColumnElement:
    """An array parameter. Integers go as one text literal the server parses: the driver would
    otherwise check each element against a pattern, which costs more than the query."""
    try:
        # int.__repr__ refuses anything but an integer, at C speed: checking each value's type in
        # Python cost more than the statement.
        numbers = ",".join(map(int.__repr__, values))
    except TypeError:
        return literal(list(values), ARRAY(element_type))
    return cast(literal("{" + numbers + "}", String), ARRAY(element_type))


def among(bind: Session | Connection, column, values: Collection) -> ColumnElement[bool]:
    """``column IN values``."""
    if _postgres(bind):
        return column == any_(_array(values, column.type))
    return column.in_(values)


def among_rows(bind: Session | Connection, column, query: Select | CompoundSelect) -> ColumnElement[bool]:
    """``column IN (query)``, for a query of many rows (an incremental export's changes). On
    PostgreSQL as ``column = ANY(ARRAY(query))``: the query runs once, first, and the column's
    index is probed for each value, in order. Given the IN, the planner misjudged how many rows
    it gives and read every row of the column's table to merge them, seconds whatever changed."""
    if _postgres(bind):
        return column == any_(func.array(query.scalar_subquery()))
    return column.in_(query)


def of_pairs(
    bind: Session | Connection, query: Select, round_column, rater_column, keys: Collection[tuple[int, int]]
) -> Select:
    """``query`` narrowed to exactly these (round, rater) pairs, not every round of them with every
    rater of them; each pair is one probe of a (round, rater) index."""
    if _postgres(bind):
        rounds, raters = [key[0] for key in keys], [key[1] for key in keys]
        wanted = select(
            func.unnest(_array(rounds, Integer())).label("round_id"),
            func.unnest(_array(raters, BigInteger())).label("rater_id"),
        ).subquery()
        return query.join(wanted, and_(round_column == wanted.c.round_id, rater_column == wanted.c.rater_id))
    return query.where(
        round_column.in_({round_id for round_id, _ in keys}), tuple_(round_column, rater_column).in_(keys)
    )
