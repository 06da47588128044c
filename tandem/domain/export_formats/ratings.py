"""Rubric scores, long: one row per (vote or standalone scores, side, axis) with the side's model,
for per-axis rankings and reward models per axis.

A rater's scores count with their vote, as votes do (current, approved unless
``--include-unapproved``). Scores given in a round without a vote (``kind`` "ratings") have no
vote to approve: they are in only with ``--include-unapproved``, as `tandem stats` counts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import items, provenance


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    for item in items(session, selection, context=False):
        row = item.row
        if not (selection.counts(row) or _standalone(row, selection)):
            continue
        models = {"A": row["model_a"], "B": row["model_b"]}
        for side, scores in sorted(row["ratings"].items()):
            for axis, score in sorted(scores.items()):
                yield {
                    "kind": row["kind"],
                    "side": side,
                    "model": models[side],
                    "axis": axis,
                    "score": score,
                    "verdict": row["verdict"],
                    **provenance(row),
                }


def _standalone(row: dict[str, Any], selection: Selection) -> bool:
    return (
        row["kind"] == "ratings"
        and row["current"]
        and selection.include_unapproved
        and (selection.include_gold or not row["gold"])
    )
