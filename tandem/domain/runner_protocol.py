"""The runner protocol's words, shared by the HTTP API (app.rounds_api) and the command line:
a round as the runner sees it (keyed by model name, never by letter), and a submission of outputs
read and validated exactly like a task's outputs (tandem.domain.task_spec)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tandem.domain import mirrors, tasks
from tandem.domain.task_spec import InvalidTask, OutputSpec
from tandem.infra.errors import NotFound
from tandem.infra.services import Services


class RoundOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outputs: list[OutputSpec]


def parse_outputs(data: Any) -> list[OutputSpec]:
    """A decoded submission {"outputs": [...]}; InvalidTask lists every problem, naming its field."""
    if not isinstance(data, dict):
        raise InvalidTask([{"field": "(outputs)", "problem": 'must be a mapping {"outputs": [...]}'}])
    try:
        return RoundOutputs.model_validate(data).outputs
    except ValidationError as exc:
        raise InvalidTask(
            [
                {"field": ".".join(map(str, error["loc"])), "problem": error["msg"].removeprefix("Value error, ")}
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def load_outputs_file(text: str) -> list[OutputSpec]:
    """A submission from a YAML or JSON file (JSON is YAML)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidTask([{"field": "(file)", "problem": f"not valid YAML or JSON: {exc}".splitlines()[0]}]) from None
    return parse_outputs(data)


def describe_round(view) -> dict:
    """A round (tandem.domain.rounds.AwaitingRound) as JSON, with the addresses a runner uses next."""
    where = f"/api/tasks/{view.task_id}/rounds/{view.round}"
    return {
        "task_id": view.task_id,
        "repo": view.repo,
        "round": view.round,
        "status": str(view.status),
        "conversation": [
            {"round": turn.round, "prompt": turn.prompt, "author": turn.author, "at": turn.at.isoformat()}
            for turn in view.conversation
        ],
        "models": list(view.models),
        "base_sha": view.base_sha,
        "heads": dict(view.heads),
        "requested_at": view.requested_at.isoformat(),
        "expires_at": view.expires_at.isoformat() if view.expires_at else None,
        "runner_failures": list(view.runner_failures),
        "base_archive_url": f"/api/tasks/{view.task_id}/base.tar",
        "patch_urls": {model: f"{where}/models/{quote(model, safe='')}/patch" for model in view.models},
        "outputs_url": f"{where}/outputs",
    }


def base_archive(services: Services, task_id: int, *, team: str | None) -> bytes:
    """The task's base tree as a tar archive, from the workers' clone of its mirror."""
    with services.storage.transaction() as session:
        task = tasks.get_task(session, task_id, team=team)
        repo, base_sha = task.repo_full_name, task.base_sha
    if base_sha is None:  # a task with outputs, not yet opened: no round of it awaits the runner
        raise NotFound(f"task {task_id} has no resolved base yet")
    clone = mirrors.clone_of(services, repo)
    with clone.locked():
        if not (clone.path / "HEAD").exists() or not clone.has_commit(base_sha):
            clone.fetch()
        return clone.archive(base_sha)
