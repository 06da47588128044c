"""check_run, check_suite and status webhooks: the mirror's CI reporting on the heads of a
task's PRs (tandem.ci). Tandem's own check run and suite are not CI. When both sides' CI has
first finished in a task's open round and the repository has `require_ci`, the raters are told
on both PRs that the round takes votes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from tandem import ci, queue, repo_config
from tandem.models import Pair, Round
from tandem.rounds import lifecycle
from workers import responses
from workers.router import Delivery, Router

router = Router()

# A report without a time (a queued check run) is older than any report with one.
_UNTIMED = datetime.min.replace(tzinfo=UTC)


def _time(*values: str | None) -> datetime:
    value = next((value for value in values if value), None)
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else _UNTIMED


def _ours(delivery: Delivery, app: dict[str, Any] | None) -> bool:
    return (app or {}).get("id") == delivery.services.settings.app_id


@router.register("check_run")
def check_run(delivery: Delivery) -> None:
    run = delivery.payload["check_run"]
    if not _ours(delivery, run.get("app")):
        _record(
            delivery, run["head_sha"], ci.CheckKind.CHECK_RUN, run["name"],
            ci.state_of(run.get("status"), run.get("conclusion")),
            run.get("html_url") or run.get("details_url"), _time(run.get("completed_at"), run.get("started_at")),
        )


@router.register("check_suite")
def check_suite(delivery: Delivery) -> None:
    suite = delivery.payload["check_suite"]
    app = suite.get("app") or {}
    if not _ours(delivery, app):
        _record(
            delivery, suite["head_sha"], ci.CheckKind.CHECK_SUITE, app.get("slug") or str(app.get("id")),
            ci.state_of(suite.get("status"), suite.get("conclusion")), None, _time(suite.get("updated_at")),
        )


@router.register("status")
def status(delivery: Delivery) -> None:
    payload = delivery.payload
    state = payload["state"]
    _record(
        delivery, payload["sha"], ci.CheckKind.STATUS, payload["context"],
        ci.state_of("completed" if state != "pending" else state, state),
        payload.get("target_url"), _time(payload.get("updated_at")),
    )


def _record(
    delivery: Delivery, head_sha: str, kind: ci.CheckKind, name: str, state: ci.CiState, url: str | None, at: datetime
) -> None:
    repo = (delivery.payload.get("repository") or {}).get("full_name")
    if not repo:
        return
    task_ids = ci.record(
        delivery.session, repo, head_sha, kind=kind, name=name, state=state, url=url, reported_at=at,
        delivery_id=delivery.id,
    )
    for task_id in sorted(task_ids):
        _note_finished(delivery, repo, task_id)


def _note_finished(delivery: Delivery, repo: str, task_id: int) -> None:
    """Record when both sides' CI first finished in the task's open round, and tell the raters."""
    session = delivery.session
    round_ = session.scalars(
        select(Round)
        .where(Round.task_id == task_id, Round.status == lifecycle.RoundStatus.OPEN)
        .order_by(Round.number.desc())
    ).first()
    if round_ is None or round_.ci_finished_at is not None:
        return
    finished = ci.finished_at(ci.rounds_ci(session, [round_.id]).get(round_.id, {}))
    if finished is None:
        return
    round_.ci_finished_at = finished
    installation_id = (delivery.payload.get("installation") or {}).get("id")
    if installation_id is None:
        return
    client = delivery.services.github.as_installation(installation_id)
    if repo_config.load(delivery.services, client, repo).require_ci:
        pair = session.scalars(select(Pair).where(Pair.task_id == task_id)).one()
        numbers = [side.pr_number for side in pair.sides if side.pr_number is not None]
        delivery.enqueue_after_commit(
            queue.PAIRS, responses.tell_ci_finished, installation_id, repo, numbers, round_.number
        )
