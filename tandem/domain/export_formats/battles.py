"""Battles in the Chatbot Arena convention: one row per counted vote, with ``model_a`` and
``model_b`` (the models shown as Option A and Option B), ``winner`` (model_a, model_b, tie, or
"tie (bothbad)" for neither), ``judge`` (the rater), ``turn`` (the round) and ``tstamp`` (when
the vote was written, Unix seconds), the form Arena's Elo and Bradley-Terry notebooks read.

Tandem adds where the vote was cast (``on_side``), its strength and margin, and the provenance
every row carries. ``--ties drop`` leaves out ties and both-bad votes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.preferences import margin
from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import provenance, votes
from tandem.domain.vocabulary import Verdict

WINNERS = {Verdict.A: "model_a", Verdict.B: "model_b", Verdict.TIE: "tie", Verdict.NEITHER: "tie (bothbad)"}


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    for item in votes(session, selection, context=False):
        row = item.row
        yield {
            "question_id": f"{row['task_id']}-{row['round']}",
            "model_a": row["model_a"],
            "model_b": row["model_b"],
            "winner": WINNERS[row["verdict"]],
            "judge": row["rater_login"],
            "turn": row["round"],
            "tstamp": datetime.fromisoformat(row["voted_at"]).timestamp(),
            "anony": True,  # raters never see which model is which
            "verdict": row["verdict"],
            "strength": row["strength"],
            "margin": margin(row),
            "on_side": row["on_side"],
            **provenance(row),
        }
