"""A synthetic plan of judgments (tests.stats_synthetic) in the database, and what it should give."""

from __future__ import annotations

from sqlalchemy import Table, insert

from tandem.infra.db import Base
from tests.stats_synthetic import Plan, database_rows, draw, is_pending, round_of


def store(storage, plan: Plan, **options) -> None:
    """The plan's rows, written straight into the tables."""
    with storage.transaction() as session:
        for batch in database_rows(plan, batch=20, **options):
            for name, rows in batch.items():
                if rows:
                    session.execute(insert(Table(name, Base.metadata)), rows)


def truth(plan: Plan, *, pending: bool = False, keep=lambda pair: True) -> list[tuple]:
    """(task, round, rater, model A, model B, verdict) of each current judgment, from the draw."""
    drawn = draw(plan)
    return sorted(
        (
            int(p) + 1,
            round_of(int(p)),
            plan.rater_names[r],
            plan.model_names[drawn.model_a[p]],
            plan.model_names[drawn.model_b[p]],
            drawn.verdict[n],
        )
        for n, (p, r) in enumerate(zip(drawn.pair, drawn.rater, strict=True))
        if (pending or not is_pending(n)) and keep(int(p))
    )
