"""OpenAI's preference fine-tuning format (method "dpo"): ``input.messages``,
``preferred_output`` and ``non_preferred_output``, each output one assistant message.

The input is the user turns, which both sides share (their earlier answers differ, and an output
may hold only assistant messages); each output is the side's whole change from the base at the
voted round's head. Votes for a tie or neither prefer no side and are left out. Tandem's
provenance is under ``metadata``; drop it (`jq -c 'del(.metadata)'`) if a service refuses keys
it does not know.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.context import TaskContext
from tandem.domain.export_formats.preferences import margin, twin
from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import provenance, votes
from tandem.domain.vocabulary import SIDES


def _output(task: TaskContext, number: int, letter: str, with_files: bool) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": task.change(number, letter).text(with_files)}]


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    for item in votes(session, selection):
        row, task = item.row, item.context
        if row["verdict"] not in SIDES:
            continue
        number, preferred = row["round"], row["verdict"]
        yield {
            "input": {"messages": task.user_messages(number)},
            "preferred_output": _output(task, number, preferred, selection.with_files),
            "non_preferred_output": _output(task, number, twin(preferred), selection.with_files),
            "metadata": {
                **provenance(row),
                "preferred_model": task.models[preferred],
                "non_preferred_model": task.models[twin(preferred)],
                "margin": margin(row),
            },
        }
