"""Listing tasks: `tandem task list` and GET /api/tasks (team-scoped, filtered, paged by cursor)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.domain import tasks
from tandem.domain.task_spec import parse_task
from tandem.infra import tokens
from tandem.infra.models import Installation, Repository
from tandem.infra.tokens import Scope
from tests.support.cli import run

REPOS = ("evals-org/mlflow", "evals-org/flask")


def add_task(services, repo: str, team: str, status: str) -> int:
    spec = parse_task(
        {
            "repo": repo,
            "base": "main",
            "prompt": "Fix it.",
            "outputs": [{"model": "model-x", "files": {"a.py": "x"}}, {"model": "model-y", "files": {"a.py": "y"}}],
        }
    )
    with services.storage.transaction() as session:
        task = tasks.create_task(session, spec, "cli:test", team=team)
        task.status = status
        session.flush()
        return task.id


@pytest.fixture
def recorded(services):
    """Tasks of two teams on two repositories: {id: (repo, team, status)}."""
    with services.storage.transaction() as session:
        session.add(Installation(id=1, account_login="evals-org", account_id=1, account_type="Organization"))
        for number, repo in enumerate(REPOS, 1):
            session.add(Repository(id=number, installation_id=1, full_name=repo))
    made = {}
    for repo, team, status in [
        (REPOS[0], "lab", "open"),
        (REPOS[1], "lab", "closed"),
        (REPOS[0], "other-lab", "open"),
        (REPOS[0], "lab", "failed"),
        (REPOS[1], "lab", "open"),
        (REPOS[0], "lab", "open"),
    ]:
        made[add_task(services, repo, team, status)] = (repo, team, status)
    return made


@pytest.fixture
def client(services, recorded):
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "lab-reader", team="lab", scopes=[Scope.READ])
    with TestClient(create_app(services)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def pages(client, **query) -> list[list[dict]]:
    found, after = [], None
    while True:
        answer = client.get("/api/tasks", params=query | ({"after": after} if after else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found.append(body["tasks"])
        if body["next"] is None:
            return found
        after = body["next"]


def test_the_api_lists_only_the_teams_tasks_in_pages(client, recorded):
    listed = pages(client, limit=2)
    assert [len(page) for page in listed] == [2, 2, 1]
    ids = [task["id"] for page in listed for task in page]
    assert ids == sorted(i for i, (_, team, _) in recorded.items() if team == "lab")
    assert all(task["team"] == "lab" and "model-x" not in str(task) for page in listed for task in page)


def test_the_api_filters_by_status_and_repository(client, recorded):
    [page] = pages(client, status="open", repo=REPOS[0])
    assert [task["id"] for task in page] == [
        i for i, (repo, team, status) in recorded.items() if (repo, team, status) == (REPOS[0], "lab", "open")
    ]
    assert len(page) == 2


def test_an_unknown_status_is_refused_naming_the_field(client):
    answer = client.get("/api/tasks", params={"status": "opened"})
    assert answer.status_code in (400, 422)
    assert "status" in answer.text


def test_listing_needs_the_read_scope(client, services):
    with services.storage.transaction() as session:
        client.headers["Authorization"] = (
            f"Bearer {tokens.create_token(session, 'submitter', team='lab', scopes=[Scope.SUBMIT])}"
        )
    assert client.get("/api/tasks").status_code == 403


def test_the_cli_lists_tasks_with_filters(services, recorded, tmp_path):
    env = {"TANDEM_DATABASE_URL": services.settings.database_url}
    every = run("task", "list", cwd=tmp_path, **env)
    assert every.returncode == 0, every.stderr
    assert [int(line.split("\t")[0]) for line in every.stdout.splitlines()] == sorted(recorded)
    chosen = run("task", "list", "--status", "open", "--repo", REPOS[0], "--team", "lab", cwd=tmp_path, **env)
    lines = chosen.stdout.splitlines()
    assert len(lines) == 2 and all("\topen\tevals-org/mlflow\tteam lab\t" in line for line in lines)
    assert run("task", "list", "--status", "done", cwd=tmp_path, **env).stderr.startswith(
        "error: --status done: one of"
    )
