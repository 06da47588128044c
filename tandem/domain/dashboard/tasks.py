"""The dashboard's tasks: a filtered page of them, and one task with everything recorded on it.

Model names are in what ``task_detail`` returns only when asked for (``with_models``): the
research role sees them, everyone else sees the letters the raters saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tandem.domain import export, tasks
from tandem.domain.dashboard.overview import Scope
from tandem.infra.errors import NotFound
from tandem.infra.models import Judgment, Round, Task

PAGE_SIZE = 50


@dataclass(frozen=True)
class TaskRow:
    id: int
    repo: str
    status: str
    team: str
    created_at: Any
    judgments: int


@dataclass(frozen=True)
class TaskPage:
    rows: list[TaskRow]
    total: int
    page: int
    pages: int


def task_page(
    session: Session, scope: Scope, *, status: str | None = None, repo: str | None = None, page: int = 1
) -> TaskPage:
    """Newest first, PAGE_SIZE to a page, with each task's number of current judgments."""
    conditions = list(scope)
    if status:
        conditions.append(Task.status == status)
    if repo:
        conditions.append(Task.repo_full_name == repo)
    total = session.scalar(select(func.count()).select_from(Task).where(*conditions)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    chosen = (
        select(Task.id, Task.repo_full_name, Task.status, Task.team, Task.created_at)
        .where(*conditions)
        .order_by(Task.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
        .subquery()
    )
    current = (
        select(Judgment.task_id, func.count().label("n"))
        .where(Judgment.task_id.in_(select(chosen.c.id)), Judgment.superseded_at.is_(None))
        .group_by(Judgment.task_id)
        .subquery()
    )
    rows = session.execute(
        select(chosen, func.coalesce(current.c.n, 0))
        .outerjoin(current, current.c.task_id == chosen.c.id)
        .order_by(chosen.c.id.desc())
    )
    return TaskPage([TaskRow(*row) for row in rows], total, page, pages)


def repositories(session: Session, scope: Scope) -> list[str]:
    return list(session.scalars(select(Task.repo_full_name).where(*scope).distinct().order_by(Task.repo_full_name)))


def task_detail(session: Session, task_id: int, scope: Scope, *, with_models: bool) -> dict[str, Any]:
    """The task as its submitter sees it (tandem.domain.tasks.describe), with every judgment version
    (the export's objects: history, ratings, reviews, line comments) and a timeline. Raises
    NotFound for a task outside the scope, as for a missing one."""
    task = tasks.get_task(session, task_id)
    if scope and session.scalar(select(Task.id).where(Task.id == task_id, *scope)) is None:
        raise NotFound(f"no task {task_id}")
    view = tasks.describe(task, with_models=with_models)
    records = export.judgments_for_task(session, task_id)
    if not with_models:
        for record in records:
            for field in ("model_a", "model_b", "gold_answer"):
                record.pop(field, None)
    view["prompt"] = task.prompt
    view["judgments"] = [r for r in records if r["kind"] == "judgment"]
    view["line_comments"] = _unique_line_comments(records)
    view["timeline"] = _timeline(view)
    if with_models and task.pair is not None:
        view["models"] = {side.letter: side.output.model for side in task.pair.sides}
    return view


def _unique_line_comments(records: list[dict]) -> list[dict]:
    """Each line comment once (every version of a rater's judgment in a round carries them)."""
    seen, comments = set(), []
    for record in records:
        for comment in record.get("line_comments", []):
            key = (record["round"], comment.get("comment_id"), comment.get("path"), comment.get("line"))
            if key not in seen:
                seen.add(key)
                comments.append({"round": record["round"], "rater": record["rater_login"], **comment})
    return comments


def _timeline(view: dict) -> list[tuple[str, str]]:
    """(ISO time, what happened), oldest first."""
    events = [(view["created_at"], "task submitted")]
    for round_ in view["rounds"]:
        number = round_["number"]
        for key, what in (("started_at", "started"), ("opened_at", "opened"), ("closed_at", "closed")):
            if round_.get(key):
                reason = f" ({round_['closed_reason']})" if key == "closed_at" and round_.get("closed_reason") else ""
                events.append((round_[key], f"round {number} {what}{reason}"))
    for judgment in view["judgments"]:
        events.append(
            (judgment["voted_at"], f"{judgment['rater_login']} voted {_verdict(judgment)} in round {judgment['round']}")
        )
        for review in judgment["reviews"]:
            events.append(
                (
                    review["created_at"],
                    f"{review['reviewer_login']} {review['decision']} {judgment['rater_login']}'s vote",
                )
            )
    return sorted(events, key=lambda event: event[0])


def _verdict(judgment: dict) -> str:
    return " ".join(part for part in (judgment["verdict"], judgment["strength"]) if part)


def rater_votes(session: Session, rater: ColumnElement[bool], scope: Scope, *, limit: int = 50) -> list[dict[str, Any]]:
    """A rater's (``rater``: a condition on Judgment) latest current votes, newest first, by letter
    (no model names)."""
    rows = session.execute(
        select(
            Judgment.task_id,
            Round.number,
            Judgment.verdict,
            Judgment.strength,
            Judgment.voted_at,
            Judgment.review_state,
            Judgment.time_on_task_seconds,
        )
        .join(Task, Task.id == Judgment.task_id)
        .join(Round, Round.id == Judgment.round_id)
        .where(rater, Judgment.superseded_at.is_(None), *scope)
        .order_by(Judgment.voted_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def rater_name(session: Session, rater_id: int | None) -> str | None:
    """The login the statistics name a rater by: the one on their latest judgment."""
    return session.scalar(
        select(Judgment.rater_login).where(Judgment.rater_id == rater_id).order_by(Judgment.id.desc()).limit(1)
    )


def task_ids(session: Session, scope: Scope) -> list[int]:
    return list(session.scalars(select(Task.id).where(*scope)))
