"""A round's outputs from the model runner: checked, recorded, and handed to the worker; and each
model's code as the runner needs it (a cumulative patch from the base).

A submission is checked in full before anything is recorded: the models must be the task's, each
output must build on that model's head (a patch that does not apply is refused naming the model
and the file, never the letter), the two must differ, and the identity-leak scan (tandem.domain.leaks)
must not refuse them (its findings are recorded on the task). Recording it and queueing the job
that puts it on GitHub happen in one transaction (the job goes through the outbox,
models.OutboxEntry), so an accepted round is never left without its job, nor a job without its round.
"""

from __future__ import annotations

import hashlib
import json
import logging

import redis

from tandem.domain import leaks, mirrors, task_checks
from tandem.domain.repo_config import RepoConfig
from tandem.domain.rounds.lifecycle import RoundConflict, RoundStatus, get_round, lock_task, models_of
from tandem.domain.task_spec import InvalidTask, LeakSettings, OutputSpec
from tandem.domain.vocabulary import TaskStatus
from tandem.infra import gitops, installations, job_names, outbox, queue
from tandem.infra.db import utcnow
from tandem.infra.errors import NotFound, known
from tandem.infra.models import OutboxEntry, Task
from tandem.infra.services import Services

log = logging.getLogger(__name__)


def digest(outputs: list[OutputSpec]) -> str:
    """The same outputs, in any order, give the same digest."""
    canonical = sorted((o.model, o.patch, o.files) for o in outputs)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _check_state(task: Task, round_, submitted: str) -> str | None:
    """'duplicate' for the accepted submission again; RoundConflict if the round takes none now."""
    if round_.outputs_digest is not None and round_.outputs_digest == submitted:
        return "duplicate"
    if task.status in (TaskStatus.CLOSED, TaskStatus.FAILED):
        raise RoundConflict(f"task {task.id} is {task.status}: it takes no more outputs")
    if round_.status != RoundStatus.AWAITING_OUTPUTS:
        if round_.outputs_digest is not None:
            raise RoundConflict(f"task {task.id} round {round_.number} already accepted different outputs")
        state = f"closed ({round_.closed_reason})" if round_.status == RoundStatus.CLOSED else round_.status
        raise RoundConflict(f"task {task.id} round {round_.number} is {state}, not awaiting outputs")
    return None


def _check_models(task: Task, outputs: list[OutputSpec]) -> list[OutputSpec]:
    """The outputs in the task's model order; InvalidTask unless they are exactly its models."""
    expected, given = models_of(task), [o.model for o in outputs]
    if sorted(given) != sorted(expected) or len(set(given)) != len(given):
        raise InvalidTask(
            [{"field": "outputs", "problem": f"give one output for each of the task's models {expected}; got {given}"}]
        )
    by_model = {o.model: o for o in outputs}
    return [by_model[model] for model in expected]


def submit(
    services: Services, task_id: int, number: int, outputs: list[OutputSpec], *, submitted_by: str | None
) -> str:
    submitted = digest(outputs)
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        task = round_.task
        if (known := _check_state(task, round_, submitted)) is not None:
            return known
        ordered = _check_models(task, outputs)
        repo, base = task.repo_full_name, task.base_sha or task.base
        parents = _parents(task, round_)
        metadata, task_settings = task.metadata_, LeakSettings.model_validate(task.leak_settings or {})
        repository = installations.active_repository(session, repo)
    _check_builds(services, repo, base, ordered, parents, round_number=number)
    repo_settings = task_checks.settings(services, repo, repository.installation_id) if repository else RepoConfig()
    found = leaks.check(
        outputs,
        models=[o.model for o in ordered],
        metadata=metadata,
        settings=task_settings.over(repo_settings.leaks),
        round_number=number,
    )
    with services.storage.transaction() as session:
        lock_task(session, task_id)
        round_ = get_round(session, task_id, number)
        task = round_.task
        if (known := _check_state(task, round_, submitted)) is not None:  # another submission won
            return known
        round_.outputs_digest, round_.submitted_by, round_.submitted_at = submitted, submitted_by, utcnow()
        round_.status, task.status = RoundStatus.APPLYING, TaskStatus.APPLYING
        if found:
            task.leaks = [*task.leaks, *found]
        if number == 1:  # the task's own outputs: the pair opens with them
            for output, spec in zip(task.outputs, ordered, strict=True):
                output.patch, output.files = spec.patch, spec.files
            task.status = TaskStatus.QUEUED
            job = OutboxEntry(
                queue=queue.PAIRS,
                func=job_names.OPEN_PAIR,
                args=[],
                kwargs=job_names.payload(job_names.OPEN_PAIR, task_id=task_id),
                job_id=f"open-pair-{task_id}",
            )
        else:
            round_.outputs = [spec.model_dump() for spec in ordered]
            job = OutboxEntry(
                queue=queue.PAIRS,
                func=job_names.APPLY_ROUND,
                args=[],
                kwargs=job_names.payload(job_names.APPLY_ROUND, task_id=task_id, number=number),
                job_id=f"apply-round-{task_id}-{number}",
            )
        session.add(job)
        session.flush()
        job_id = job.id
    try:
        outbox.dispatch(services, [job_id])
    except redis.RedisError:  # recorded: the outbox's sweep queues it once Redis is back
        log.warning("task %s round %s: apply job left to the outbox sweep (Redis unavailable)", task_id, number)
    return "accepted"


def _parents(task: Task, round_) -> list[str | None]:
    """Each model's head at the start of the round, in the task's model order (None: the base)."""
    if task.pair is None:
        return [None for _model in models_of(task)]
    by_output = {side.output_id: round_.side(side.letter) for side in task.pair.sides}
    return [by_output[output.id].parent_sha if by_output.get(output.id) else None for output in task.outputs]


def _check_builds(
    services: Services, repo: str, base: str, outputs: list[OutputSpec], parents: list[str | None], *, round_number: int
) -> None:
    """Build each output on its model's head, exactly as the worker will."""
    clone = mirrors.clone_of(services, repo)
    with clone.locked():
        if not _has_all(clone, filter(None, parents)):
            clone.fetch()
        base_sha = clone.resolve(base)[0] if base else None
    starts = [
        (parent, "its head") if parent else (known(base_sha, "the task's base"), "the task's base")
        for parent in parents
    ]
    problems = task_checks.build_problems(clone, outputs, starts, same=f"in round {round_number}")
    if problems:
        raise InvalidTask(problems)


def _has_all(clone: gitops.MirrorClone, shas) -> bool:
    """Whether the clone exists and holds these commits (else it needs a fetch)."""
    return (clone.path / "HEAD").exists() and all(clone.has_commit(sha) for sha in shas)


def model_patch(services: Services, task_id: int, number: int, model: str) -> str:
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        task = round_.task
        if model not in models_of(task):
            raise NotFound(f"task {task_id} has no model {model!r}")
        parents = dict(zip(models_of(task), _parents(task, round_), strict=True))
        head, base_sha, repo = parents[model], task.base_sha, task.repo_full_name
    if head is None or base_sha is None:  # nothing of the model's is on the PRs yet
        return ""
    clone = mirrors.clone_of(services, repo)
    with clone.locked():
        if not _has_all(clone, (head, base_sha)):
            clone.fetch()
    return clone.diff(base_sha, head)
