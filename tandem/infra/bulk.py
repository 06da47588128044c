"""Conditions for reading rows by a batch of keys, with statement text that is the same for every
batch: on PostgreSQL the keys go as array parameters, so the driver parses the statement once and
the server plans it quickly, however many keys there are (a parameter per key would make every
batch a new, long statement).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    any_,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.orm import Session


def _postgres(bind: Session | Connection) -> bool:
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "postgresql"


def among(bind: Session | Connection, column, values: Collection) -> ColumnElement[bool]:
    """``column IN values``."""
    if _postgres(bind):
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def of_pairs(
    bind: Session | Connection, query: Select, round_column, rater_column, keys: Collection[tuple[int, int]]
) -> Select:
    """``query`` narrowed to exactly these (round, rater) pairs, not every round of them with every
    rater of them; each pair is one probe of a (round, rater) index."""
    if _postgres(bind):
        rounds, raters = [key[0] for key in keys], [key[1] for key in keys]
        wanted = select(
            func.unnest(literal(rounds, ARRAY(Integer))).label("round_id"),
            func.unnest(literal(raters, ARRAY(BigInteger))).label("rater_id"),
        ).subquery()
        return query.join(wanted, and_(round_column == wanted.c.round_id, rater_column == wanted.c.rater_id))
    return query.where(
        round_column.in_({round_id for round_id, _ in keys}), tuple_(round_column, rater_column).in_(keys)
    )
