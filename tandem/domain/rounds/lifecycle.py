"""Rounds of a task as a lifecycle, and what the model runner sees of them.

    awaiting_outputs -> applying -> open -> closed (judged | superseded | expired | failed)

Round 1 holds the task's prompt: it is open once the pair opens, or awaits outputs first when the
task was submitted with models only. Each /followup starts the next round, which awaits the
models' answers (the runner's); once they are accepted the apply job (tandem.round_apply) puts
them on both PRs and opens the round, closing the one before as superseded. A round whose answers
do not come within the repository's `followups.round_timeout` expires; one that cannot be put on
GitHub (a side's branch moved) fails. The task's status follows its current round.

The runner's view is keyed by model name, never by letter: the runner must not learn the blinding.
Domain only: no HTTP, no git (tandem.domain.rounds.outputs builds and checks patches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain import runner_events
from tandem.domain.vocabulary import NEVER_OPENED, ClosedReason, RoundStatus, TaskStatus
from tandem.infra import metrics
from tandem.infra.db import utcnow
from tandem.infra.errors import NotFound, TandemError
from tandem.infra.models import Round, RoundSide, Task
from tandem.infra.services import Services

# Rounds on their way to the PRs: no other may start, and no vote counts in them yet.
WAITING = (RoundStatus.AWAITING_OUTPUTS, RoundStatus.APPLYING)


class RoundConflict(TandemError):
    """The round cannot take these outputs now (HTTP 409): it is not awaiting outputs, the task is
    closed, or a different submission was already accepted."""


@dataclass(frozen=True)
class Turn:
    """One user turn of the conversation."""

    round: int
    prompt: str
    author: str | None
    at: datetime


@dataclass(frozen=True)
class AwaitingRound:
    """What a runner needs to answer a round, keyed by model name (never by letter)."""

    task_id: int
    repo: str
    round: int
    conversation: list[Turn]
    models: list[str]
    base_sha: str | None
    heads: dict[str, str | None]  # model -> its head when the round started (None before round 1)
    requested_at: datetime
    expires_at: datetime | None
    status: str = RoundStatus.AWAITING_OUTPUTS
    runner_failures: tuple[dict, ...] = ()


# Reading ------------------------------------------------------------------------------------------


def conversation(task: Task, upto: int | None = None) -> list[Turn]:
    """Every prompt that reached (or is asked of) the models, in order, up to round `upto`."""
    turns = [
        Turn(round=r.number, prompt=r.prompt, author=r.author_login or task.submitted_by, at=r.created_at)
        for r in task.rounds
        if (upto is None or r.number <= upto) and r.withdrawn_at is None and r.closed_reason not in NEVER_OPENED
    ]
    if not turns or turns[0].round != 1:  # a task recorded before rounds were
        turns.insert(0, Turn(round=1, prompt=task.prompt, author=task.submitted_by, at=task.created_at))
    return turns


def models_of(task: Task) -> list[str]:
    """The task's models, in submission order."""
    return [output.model for output in task.outputs]


def _model_heads(task: Task, round_: Round) -> dict[str, str | None]:
    heads: dict[str, str | None] = {model: None for model in models_of(task)}
    if task.pair is not None:
        for side in task.pair.sides:
            round_side = round_.side(side.letter)
            heads[side.output.model] = round_side.parent_sha if round_side is not None else None
    return heads


def view(task: Task, round_: Round) -> AwaitingRound:
    return AwaitingRound(
        task_id=task.id,
        repo=task.repo_full_name,
        round=round_.number,
        conversation=conversation(task, round_.number),
        models=models_of(task),
        base_sha=task.base_sha,
        heads=_model_heads(task, round_),
        requested_at=round_.created_at,
        expires_at=round_.expires_at,
        status=round_.status,
        runner_failures=tuple(round_.runner_failures or ()),
    )


def awaiting_rounds(session: Session, *, team: str | None, after_id: int | None, limit: int) -> list[AwaitingRound]:
    """Rounds awaiting outputs, ordered by round row id; the cursor is the last id seen."""
    query = (
        select(Round, Task)
        .join(Task, Task.id == Round.task_id)
        .where(Round.status == RoundStatus.AWAITING_OUTPUTS, Round.withdrawn_at.is_(None))
        .order_by(Round.id)
        .limit(limit)
    )
    if team is not None:
        query = query.where(Task.team == team)
    if after_id is not None:
        query = query.where(Round.id > after_id)
    return [view(task, round_) for round_, task in session.execute(query)]


def round_id_of(session: Session, task_id: int, number: int) -> int:
    """The row id of a round (the pull protocol's cursor)."""
    return get_round(session, task_id, number).id


def get_round(session: Session, task_id: int, number: int, *, team: str | None = None) -> Round:
    task = session.get(Task, task_id) if 0 < task_id < 2**31 else None
    if task is None or (team is not None and task.team != team):
        raise NotFound(f"no task {task_id}")
    round_ = session.scalars(select(Round).where(Round.task_id == task_id, Round.number == number)).first()
    if round_ is None:
        raise NotFound(f"task {task_id} has no round {number}")
    return round_


def round_view(session: Session, task_id: int, number: int, *, team: str | None = None) -> AwaitingRound:
    """One round as the runner sees it (any status); NotFound if there is no such round."""
    round_ = get_round(session, task_id, number, team=team)
    return view(round_.task, round_)


# Changing -----------------------------------------------------------------------------------------


def lock_task(session: Session, task_id: int) -> None:
    """Serialize writers on one task: lock its row until the transaction ends (PostgreSQL).

    SQLite has no row locks and needs none: it lets one transaction write at a time.
    """
    session.execute(select(Task.id).where(Task.id == task_id).with_for_update())


def event_payload(round_: Round) -> dict:
    """What an outgoing webhook says of a round: ids and numbers only (the runner pulls the rest)."""
    return {
        "task_id": round_.task_id,
        "round": round_.number,
        "status": round_.status,
        "closed_reason": round_.closed_reason,
    }


def await_outputs(session: Session, round_: Round, *, timeout: timedelta | None) -> None:
    """Ask the runner for the round's outputs: it awaits them until `timeout` from now."""
    task = round_.task
    round_.status = RoundStatus.AWAITING_OUTPUTS
    round_.expires_at = utcnow() + timeout if timeout is not None else None
    if task.pair is not None:
        for side in task.pair.sides:
            if round_.side(side.letter) is None:
                round_.sides.append(RoundSide(letter=side.letter, parent_sha=side.head_sha))
    task.status = TaskStatus.AWAITING_OUTPUTS
    session.flush()
    runner_events.emit(session, runner_events.ROUND_AWAITING_OUTPUTS, event_payload(round_))


def open_round(session: Session, round_: Round) -> None:
    """The round's outputs are on both PRs: votes count in it now; the round before is superseded."""
    task = round_.task
    for earlier in task.rounds:
        if earlier.number < round_.number and earlier.status != RoundStatus.CLOSED:
            close_round(session, earlier, ClosedReason.SUPERSEDED)
    round_.status, round_.opened_at = RoundStatus.OPEN, utcnow()
    metrics.count_on_commit(session, metrics.ROUNDS_OPENED)
    if task.pair is not None:
        for side in task.pair.sides:
            round_side = round_.side(side.letter) or RoundSide(letter=side.letter)
            if round_side.round is None:
                round_.sides.append(round_side)
            round_side.head_sha = side.head_sha
    if task.status not in (TaskStatus.CLOSED, TaskStatus.FAILED):
        task.status = TaskStatus.OPEN


def record_change(round_: Round, letter: str, diff: str, files: dict[str, str | None]) -> None:
    """Keep a side's whole change from the base at the round's head (tandem.infra.gitops.change), with
    the head, so exports read it without git; the side is added if the round does not have it yet."""
    round_side = round_.side(letter)
    if round_side is None:
        round_side = RoundSide(letter=letter)
        round_.sides.append(round_side)
    round_side.diff, round_side.files = diff, files


def open_first_round(session: Session, task: Task) -> None:
    """The pair is open: so is round 1 (created if the task predates rounds)."""
    first = next((r for r in task.rounds if r.number == 1), None)
    if first is None:
        first = Round(number=1, prompt=task.prompt, author_login=task.submitted_by)
        task.rounds.append(first)
        session.flush()
    open_round(session, first)


def fail_first_round(session: Session, task: Task, reason: str) -> None:
    """The pair could not be opened: neither can its round 1."""
    for round_ in task.rounds:
        if round_.number == 1 and round_.status != RoundStatus.CLOSED:
            close_round(session, round_, ClosedReason.FAILED, reason)


def close_round(session: Session, round_: Round, reason: ClosedReason, failure: str | None = None) -> None:
    round_.status, round_.closed_reason, round_.closed_at = RoundStatus.CLOSED, reason, utcnow()
    if failure is not None:
        round_.failure_reason = failure
    task = round_.task
    if reason in NEVER_OPENED and task.status in WAITING:
        # Back to the round before, which never stopped being open (round 1 has none: the task fails).
        opened = task.pair is not None and task.pair.opened_at is not None
        task.status = TaskStatus.OPEN if opened else TaskStatus.FAILED
        if task.status == TaskStatus.FAILED:
            task.failure_reason = failure or f"round {round_.number} {reason}"
    session.flush()
    runner_events.emit(session, runner_events.ROUND_CLOSED, event_payload(round_))


def close_task(session: Session, task: Task) -> None:
    """Judging is complete: the current round closes as judged, and the task with it."""
    for round_ in task.rounds:
        if round_.status != RoundStatus.CLOSED:
            judged = round_.status == RoundStatus.OPEN
            close_round(session, round_, ClosedReason.JUDGED if judged else ClosedReason.SUPERSEDED)
    task.status = TaskStatus.CLOSED
    runner_events.emit(session, runner_events.TASK_CLOSED, {"task_id": task.id})


def report_runner_failure(services: Services, task_id: int, number: int, *, model: str | None, reason: str) -> None:
    """The runner could not answer: recorded on the round (shown in task show and the API); the
    round keeps awaiting outputs until it expires or a later submission is accepted."""
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        if round_.status != RoundStatus.AWAITING_OUTPUTS:
            raise RoundConflict(f"task {task_id} round {number} is {_state(round_)}, not awaiting outputs")
        if model is not None and model not in models_of(round_.task):
            raise NotFound(f"task {task_id} has no model {model!r}")
        entry = {"model": model, "reason": reason[:2000], "at": utcnow().isoformat()}
        round_.runner_failures = [*(round_.runner_failures or []), entry]


def _state(round_: Round) -> str:
    return f"closed ({round_.closed_reason})" if round_.status == RoundStatus.CLOSED else str(round_.status)


def expired_rounds(session: Session, now: datetime | None = None) -> list[Round]:
    """Rounds still awaiting outputs past their deadline."""
    return list(
        session.scalars(
            select(Round)
            .where(Round.status == RoundStatus.AWAITING_OUTPUTS, Round.expires_at < (now or utcnow()))
            .order_by(Round.id)
        )
    )
