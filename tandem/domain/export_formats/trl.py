"""TRL's preference format: ``prompt``, ``chosen``, ``rejected`` (DPOTrainer, RewardTrainer).

Standard: the prompt is the user turns as one text (tandem.domain.export_formats.context), and each side
is its whole change from the base at the voted round's head. Conversational (``conversational``):
role/content messages; the prompt is the task's prompt, and ``chosen``/``rejected`` are each
side's conversation after it (its change as of each round, then the next follow-up, ...), since
two sides' earlier turns differ and only the first prompt is theirs in common.

``margin`` is the vote's strength, 1 (slightly), 2 (clearly) or 3 (much): RewardTrainer adds it
to the loss as the margin by which chosen must beat rejected. Votes for a tie or neither have no
chosen side and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.preferences import margin, twin
from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import provenance, votes
from tandem.domain.vocabulary import SIDES


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    for item in votes(session, selection):
        row, task = item.row, item.context
        if row["verdict"] not in SIDES:
            continue
        chosen, rejected, number = row["verdict"], twin(row["verdict"]), row["round"]
        prompt: str | list[dict[str, str]]
        sides: dict[str, str | list[dict[str, str]]]
        if selection.conversational:
            prompt = task.user_messages(1)
            sides = {letter: task.conversation(number, letter, selection.with_files)[1:] for letter in "AB"}
        else:
            prompt = task.prompt(number)
            sides = {letter: task.change(number, letter).text(selection.with_files) for letter in "AB"}
        yield {
            "prompt": prompt,
            "chosen": sides[chosen],
            "rejected": sides[rejected],
            "margin": float(margin(row)),
            "chosen_model": task.models[chosen],
            "rejected_model": task.models[rejected],
            "chosen_side": chosen,
            "responses_recorded": task.change(number, "A").recorded and task.change(number, "B").recorded,
            **provenance(row),
        }
