"""What a preference row needs besides the export's raw object: the conversation (the user turns)
and each side's code change, loaded for a batch of tasks at once, with plain column queries.

A side's response in a round is its whole change from the task's base at the round's head: the
unified diff and, when asked, the full text of the files it changed, as the worker recorded them
when it built the side's commit (RoundSide.diff and .files). Rounds recorded before those were
kept have none: their response is the outputs as submitted, round by round (a patch, or the files
of a file map), and ``recorded`` is False so a consumer can tell or leave them out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain.vocabulary import NEVER_OPENED
from tandem.infra.errors import known
from tandem.infra.models import Output, Pair, Round, RoundSide, Side, Task


@dataclass(frozen=True)
class Change:
    """A side's change from the base at one round's head."""

    diff: str
    files: dict[str, str | None]
    recorded: bool  # False: pieced together from the outputs as submitted (see the module's doc)

    def text(self, with_files: bool) -> str:
        """The response: the diff, then (with_files) each changed file's full text after a header."""
        return "\n".join(part for part in (self.diff, with_files and _files_text(self.files)) if part)


@dataclass
class TaskContext:
    prompts: dict[int, str] = field(default_factory=dict)  # rounds that reached the PRs: number -> prompt
    models: dict[str, str] = field(default_factory=dict)  # letter -> model
    changes: dict[tuple[int, str], Change] = field(default_factory=dict)  # (round, letter) -> change

    def user_turns(self, upto: int) -> list[str]:
        """The prompts of the rounds up to `upto`, in order: the task's, then the follow-ups."""
        return [prompt for number, prompt in sorted(self.prompts.items()) if number <= upto]

    def prompt(self, upto: int) -> str:
        """The user turns as one text: the task's prompt, then each follow-up under a heading."""
        first, *later = self.user_turns(upto)
        return first + "".join(f"\n\nFollow-up {number}:\n{turn}" for number, turn in enumerate(later, 1))

    def user_messages(self, upto: int) -> list[dict[str, str]]:
        """The user turns as messages: what both sides were asked, which they share."""
        return [{"role": "user", "content": turn} for turn in self.user_turns(upto)]

    def change(self, number: int, letter: str) -> Change:
        return self.changes[(number, letter)]

    def conversation(self, upto: int, letter: str, with_files: bool) -> list[dict[str, str]]:
        """One side's conversation up to round `upto`: each prompt, then the side's change as of
        that round (its whole change from the base, as the PR showed it then)."""
        messages = []
        for number, prompt in sorted(self.prompts.items()):
            if number <= upto:
                messages.append({"role": "user", "content": prompt})
                messages.append({"role": "assistant", "content": self.change(number, letter).text(with_files)})
        return messages


def load(session: Session, task_ids: Iterable[int], team: str | None) -> dict[int, TaskContext]:
    """The context of each of these tasks (only the team's, when a team is given)."""
    contexts: dict[int, TaskContext] = {}
    for task_id, prompt in session.execute(_of_team(select(Task.id, Task.prompt), task_ids, team)):
        contexts[task_id] = TaskContext(prompts={1: prompt})
    if not contexts:
        return contexts
    submitted: dict[int, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for task_id, letter, model, patch, files in session.execute(
        select(Pair.task_id, Side.letter, Output.model, Output.patch, Output.files)
        .join(Side, Side.pair_id == Pair.id)
        .join(Output, Output.id == Side.output_id)
        .where(Pair.task_id.in_(contexts))
    ):
        contexts[task_id].models[letter] = model
        submitted[task_id][model][1] = {"patch": patch, "files": files}
    rounds: dict[int, tuple[int, int]] = {}
    for round_id, task_id, number, prompt, withdrawn_at, closed_reason, outputs in session.execute(
        select(
            Round.id, Round.task_id, Round.number, Round.prompt, Round.withdrawn_at, Round.closed_reason, Round.outputs
        ).where(Round.task_id.in_(contexts))
    ):
        rounds[round_id] = (task_id, number)
        if withdrawn_at is None and closed_reason not in NEVER_OPENED:
            contexts[task_id].prompts[number] = prompt
            for output in outputs or ():
                submitted[task_id][output["model"]][number] = output
    for round_id, letter, diff, files in session.execute(
        select(RoundSide.round_id, RoundSide.letter, RoundSide.diff, RoundSide.files).where(
            RoundSide.round_id.in_(rounds), RoundSide.diff.is_not(None)
        )
    ):
        task_id, number = rounds[round_id]
        contexts[task_id].changes[(number, letter)] = Change(known(diff, "a recorded diff"), files or {}, recorded=True)
    for task_id, context in contexts.items():
        for letter, model in context.models.items():
            for number in context.prompts:
                if (number, letter) not in context.changes:
                    context.changes[(number, letter)] = _as_submitted(submitted[task_id][model], number)
    return contexts


def in_team(session: Session, task_ids: Iterable[int], team: str | None) -> set[int]:
    """Those of these tasks that are the team's (all of them when no team is given)."""
    if team is None:
        return set(task_ids)
    return set(session.scalars(_of_team(select(Task.id), task_ids, team)))


def _of_team(query, task_ids: Iterable[int], team: str | None):
    query = query.where(Task.id.in_(set(task_ids)))
    return query if team is None else query.where(Task.team == team)


def _as_submitted(outputs: dict[int, dict[str, Any]], upto: int) -> Change:
    """A side's change up to a round, from the outputs as submitted: the patches one after the
    other, and the files the file maps wrote (a later round's text of a file wins)."""
    patches: list[str] = []
    files: dict[str, str | None] = {}
    for number in sorted(n for n in outputs if n <= upto):
        output = outputs[number]
        if output.get("patch") is not None:
            patches.append(output["patch"])
        else:  # a file map is no diff: its files are the change
            patches.append(_files_text(output.get("files") or {}))
            files |= output.get("files") or {}
    return Change("\n".join(patches), files, recorded=False)


def _files_text(files: dict[str, str | None]) -> str:
    """Each file's full text after a header naming it (a deleted file: the header alone)."""
    return "\n".join(
        f"=== {path} (deleted) ===\n" if content is None else f"=== {path} ===\n{content}"
        for path, content in sorted(files.items())
    )
