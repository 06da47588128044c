"""The raw export's objects (tandem.domain.export) with their task's context, a batch at a time.

The raw export is read as it streams; for each batch of its objects the tasks' conversations and
side changes are loaded in bulk (tandem.domain.export_formats.context), so memory stays flat. An object
of a task outside the selection's team has no context and is dropped here: another team's data
never reaches a format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from tandem.domain import export
from tandem.domain.export_formats.context import TaskContext, in_team
from tandem.domain.export_formats.context import load as load_context
from tandem.domain.export_formats.selection import Selection
from tandem.infra.errors import known

BATCH_SIZE = 500


class Item(NamedTuple):
    # A tuple rather than a frozen dataclass: one is made for every object of an export, and a
    # tuple costs a fraction of the dataclass's checked assignments.
    row: dict[str, Any]  # the raw export's object
    task: TaskContext | None  # None when not asked for

    @property
    def context(self) -> TaskContext:
        """The task's context, for a format that asked for it."""
        return known(self.task, f"task {self.row['task_id']}'s context")


def items(session: Session, selection: Selection, *, context: bool = True) -> Iterator[Item]:
    """Every raw object in the selection's team, round and metadata, with its task's context
    (``context``: formats that need only the raw object skip loading it)."""
    rows = export.iter_judgment_records(
        session, since=selection.since, repo=selection.repo, cursor=selection.cursor, until=selection.until
    )
    while raw := list(islice(rows, BATCH_SIZE)):
        batch = [row for row in raw if selection.takes(row)] if selection.narrows else raw
        task_ids = {row["task_id"] for row in batch}
        contexts: Mapping[int, TaskContext | None]
        if context:
            contexts = load_context(session, task_ids, selection.team)
        else:
            contexts = dict.fromkeys(in_team(session, task_ids, selection.team))
        for row in batch:
            if row["task_id"] in contexts:
                yield Item(row, contexts[row["task_id"]])


def votes(session: Session, selection: Selection, *, context: bool = True) -> Iterator[Item]:
    """The votes training formats count (Selection.counts), with their context."""
    return (item for item in items(session, selection, context=context) if selection.counts(item.row))


def provenance(row: dict[str, Any]) -> dict[str, Any]:
    """What every row of a training format carries, so that nothing needs a join. ``blind`` is
    False for a task whose outputs leaked a model's identity; ``gold`` marks a gold task."""
    return {
        "task_id": row["task_id"],
        "round": row["round"],
        "repo": row["repo"],
        "rater_id": row["rater_id"],
        "rater_login": row["rater_login"],
        "judgment_id": row["id"],
        "review_state": row["review_state"],
        "head_sha_a": row["head_sha_a"],
        "head_sha_b": row["head_sha_b"],
        "round_head_sha_a": row["round_head_sha_a"],
        "round_head_sha_b": row["round_head_sha_b"],
        "blind": row["blind"],
        "gold": row["gold"],
        "task_metadata": row["task_metadata"],
    }
