"""Submitting a task and reporting on it. The PRs are opened later, by a worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, selectinload

from tandem.domain import ci, leaks, task_checks
from tandem.domain.rounds import lifecycle
from tandem.domain.task_spec import InvalidTask, LeakSettings, TaskSpec
from tandem.domain.vocabulary import RoundStatus, TaskStatus
from tandem.infra import installations, job_names, queue
from tandem.infra.db import utcnow
from tandem.infra.errors import NotFound, ServiceUnavailable, known
from tandem.infra.models import DEFAULT_TEAM, Output, Pair, Repository, Round, Task
from tandem.infra.services import Services


def _installed(session: Session, repo: str) -> Repository:
    repository = installations.active_repository(session, repo)
    if repository is None:
        raise InvalidTask([{"field": "repo", "problem": f"Tandem is not installed on {repo} (or it is suspended)"}])
    return repository


def create_task(
    session: Session, spec: TaskSpec, submitted_by: str | None, *, team: str = DEFAULT_TEAM, leaks: list | None = None
) -> Task:
    """Record a validated task (status queued), with what the leak scan found in its outputs.
    The repository must be one the app can see."""
    _installed(session, spec.repo)
    task = Task(
        repo_full_name=spec.repo,
        base=spec.base,
        prompt=spec.prompt,
        rubric=spec.rubric,
        raters=spec.raters,
        metadata_=spec.metadata,
        gold=spec.gold.model_dump() if spec.gold else None,
        leak_settings=spec.leaks.model_dump(exclude_none=True) if spec.leaks else None,
        leaks=leaks or [],
        status=TaskStatus.QUEUED,
        submitted_by=submitted_by,
        team=team,
    )
    session.add(task)
    if spec.outputs:
        for position, output in enumerate(spec.outputs):
            task.outputs.append(Output(position=position, model=output.model, patch=output.patch, files=output.files))
    else:  # models only: the runner answers round 1
        task.outputs.extend(
            Output(position=position, model=model)
            for position, model in enumerate(known(spec.models, "the spec's models"))
        )
    # With outputs, round 1 opens with the pair (tandem.domain.pairs); with models only, it awaits them.
    first = Round(number=1, prompt=spec.prompt, author_login=submitted_by, status=lifecycle.RoundStatus.APPLYING)
    task.rounds.append(first)
    session.flush()
    return task


def get_task(session: Session, task_id: int, *, team: str | None = None) -> Task:
    """The task; with a team, only if it is that team's (another team's task is not found either)."""
    # An id outside the column's range is no task (the database would refuse to compare it).
    task = session.get(Task, task_id) if 0 < task_id < 2**31 else None
    if task is None or (team is not None and task.team != team):
        raise NotFound(f"no task {task_id}")
    return task


def describe(task: Task, *, with_models: bool = True) -> dict[str, Any]:
    """The submitter's view of a task: its status and PRs, its gold answer, what the leak scan
    found (model names appear only there: the submitter knows them) and its rounds with their CI."""
    view = summarize(task, with_models=with_models)
    cis = ci.rounds_ci(known(object_session(task), "the task's session"), [round_.id for round_ in task.rounds])
    view["rounds"] = [_describe_round(round_) | {"ci": ci.view(cis.get(round_.id, {}))} for round_ in task.rounds]
    return view


# Every status a task can have (the field's comment in tandem.infra.models tells the lifecycle).
STATUSES = tuple(status.value for status in TaskStatus)  # plain strings: a Literal of the API's filter


def list_tasks(
    session: Session,
    *,
    team: str | None,
    status: str | None = None,
    repo: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Task]:
    """Tasks in id order, after the cursor `after_id`; with a team, only that team's."""
    query = select(Task).options(selectinload(Task.pair).selectinload(Pair.sides)).order_by(Task.id).limit(limit)
    if team is not None:
        query = query.where(Task.team == team)
    if status is not None:
        query = query.where(Task.status == status)
    if repo is not None:
        query = query.where(Task.repo_full_name == repo)
    if after_id is not None:
        query = query.where(Task.id > after_id)
    return list(session.scalars(query))


def summarize(task: Task, *, with_models: bool = True) -> dict[str, Any]:
    """A task in a listing: describe() without its rounds. The gold answer and the leak scan's
    findings name models: ``with_models`` False (a client that may not see them) gives only
    whether the task is gold and how many findings there are."""
    view = {
        "id": task.id,
        "repo": task.repo_full_name,
        "base": task.base,
        "team": task.team,
        "status": task.status,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }
    if task.failure_reason:
        view["failure_reason"] = task.failure_reason
    if task.gold is not None:
        view["gold"] = task.gold if with_models else True
    # The leak scan's findings name models: the submitter's view only, never GitHub.
    view["blind"] = not task.leaks
    view["leaks"] = task.leaks if with_models else len(task.leaks or [])
    if task.pair is not None:
        view["pull_requests"] = {side.letter: side.pr_url for side in task.pair.sides if side.pr_url is not None}
    return view


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _describe_round(round_: Round) -> dict[str, Any]:
    """A round as its submitter sees it: by letter (they see the PRs, never which model is which)."""
    view: dict[str, Any] = {
        "number": round_.number,
        "status": round_.status,
        "closed_reason": round_.closed_reason,
        "prompt": round_.prompt,
        "author": round_.author_login,
        "started_at": _iso(round_.created_at),
        "expires_at": _iso(round_.expires_at) if round_.status == RoundStatus.AWAITING_OUTPUTS else None,
        "submitted_at": _iso(round_.submitted_at),
        "opened_at": _iso(round_.opened_at),
        "closed_at": _iso(round_.closed_at),
        "head_shas": {side.letter: side.head_sha for side in round_.sides if side.head_sha},
    }
    if round_.withdrawn_at is not None:
        view["withdrawn_at"] = _iso(round_.withdrawn_at)
    if round_.failure_reason:
        view["failure_reason"] = round_.failure_reason
    if round_.runner_failures:
        view["runner_failures"] = round_.runner_failures
    return view


def submit(services: Services, spec: TaskSpec, submitted_by: str | None, *, team: str = DEFAULT_TEAM) -> int:
    """Check the task against its mirror (task_checks), record it and queue the opening of its
    pair; returns the task id without waiting for the pair."""
    with services.storage.transaction() as session:
        repository = _installed(session, spec.repo)
        mirror = task_checks.Mirror(repository.id, repository.installation_id)
    task_checks.check(services, spec, mirror)
    settings = task_checks.settings(services, spec.repo, mirror.installation_id)
    found = []
    if spec.outputs is not None:  # else the runner's outputs are scanned when they arrive
        found = leaks.check(
            spec.outputs,
            models=spec.model_names(),
            metadata=spec.metadata,
            settings=(spec.leaks or LeakSettings()).over(settings.leaks),
            round_number=1,
        )
    else:  # the pair opens when the runner's outputs arrive
        resolved = task_checks.resolve_base(services, spec.repo, spec.base)
    with services.storage.transaction() as session:
        task = create_task(session, spec, submitted_by, team=team, leaks=found)
        task_id = task.id
        if spec.outputs is None:
            task.base_sha, task.base_branch = resolved or (None, None)
            lifecycle.await_outputs(session, task.rounds[0], timeout=settings.followups.round_timeout)
            return task_id
    try:
        _queue_opening(services, task_id)
    except redis.RedisError:
        with services.storage.transaction() as session:
            task = session.get_one(Task, task_id)
            task.status, task.failure_reason = (
                TaskStatus.FAILED,
                "could not be queued (Redis unavailable); submit it again",
            )
        raise ServiceUnavailable(f"task {task_id} could not be queued: Redis is unavailable") from None
    return task_id


def _opening_job_id(task_id: int) -> str:
    return f"open-pair-{task_id}"


def _queue_opening(services: Services, task_id: int) -> None:
    services.enqueue(
        queue.PAIRS,
        job_names.OPEN_PAIR,
        kwargs=job_names.payload(job_names.OPEN_PAIR, task_id=task_id),
        job_id=_opening_job_id(task_id),
    )


def stuck_tasks(session: Session, quiet_for: timedelta) -> list[int]:
    """Tasks still queued or opening with no change for quiet_for: their job was lost."""
    cutoff = utcnow() - quiet_for
    return list(
        session.scalars(
            select(Task.id)
            .where(Task.status.in_((TaskStatus.QUEUED, TaskStatus.OPENING)), Task.updated_at < cutoff)
            .order_by(Task.id)
        )
    )


def requeue_stuck(services: Services, quiet_for: timedelta) -> list[int]:
    """Queue again the opening of tasks quiet for `quiet_for` with no opening job waiting or
    running (opening converges, so a spare run does no harm)."""
    with services.storage.transaction() as session:
        stuck = stuck_tasks(session, quiet_for)
    if not stuck:
        return []
    waiting = _tasks_with_an_opening_job(services)
    requeued = []
    for task_id in stuck:
        if task_id not in waiting:
            _queue_opening(services, task_id)
            requeued.append(task_id)
    return requeued


def _tasks_with_an_opening_job(services: Services) -> set[int]:
    """Tasks whose opening job is queued, scheduled or running. Not only `open-pair-N`: an
    opening that met a rate limit is queued again, for later, under another job id."""
    pairs = services.queue(queue.PAIRS)
    ids = pairs.get_job_ids() + pairs.scheduled_job_registry.get_job_ids() + pairs.started_job_registry.get_job_ids()
    jobs = Job.fetch_many(ids, services.redis, serializer=pairs.serializer)
    # (An opening queued by the release before names its task positionally.)
    return {
        job.kwargs.get("task_id") or (job.args or [None])[0]
        for job in jobs
        if job is not None and job.func_name == job_names.OPEN_PAIR
    } - {None}
