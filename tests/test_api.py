"""The HTTP API: bearer tokens, task submission with every error listed, task status."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem import queue, tokens
from tandem.models import ApiToken, Installation, Repository

TASK = {
    "repo": "evals-org/mlflow",
    "base": "main",
    "prompt": "Fix it.",
    "outputs": [{"model": "model-x", "patch": "diff"}, {"model": "model-y", "files": {"a.py": "x"}}],
}


@pytest.fixture
def client(services):
    with services.storage.transaction() as session:
        session.add(Installation(id=1, account_login="evals-org", account_id=1, account_type="Organization"))
        session.add(Repository(id=1, installation_id=1, full_name="evals-org/mlflow"))
        token = tokens.create_token(session, "research-team")
    with TestClient(create_app(services)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def test_tokens_are_stored_only_as_hashes(services):
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "ci")
    with services.storage.transaction() as session:
        [row] = session.query(ApiToken).all()
        assert token not in (row.token_hash, row.name)
        assert tokens.authenticate(session, token) == "ci"
        assert tokens.authenticate(session, token + "x") is None


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc"])
def test_requests_without_a_live_token_are_401(client, authorization):
    if authorization is None:
        del client.headers["Authorization"]
    else:
        client.headers["Authorization"] = authorization
    assert client.post("/api/tasks", json=TASK).status_code == 401
    assert client.get("/api/tasks/1").status_code == 401


def test_a_valid_task_is_queued_and_reported(client, services):
    response = client.post("/api/tasks", json=TASK)
    assert response.status_code == 202
    task_id = response.json()["id"]
    [job] = services.queue(queue.PAIRS).get_jobs()
    assert job.args == [task_id]
    shown = client.get(f"/api/tasks/{task_id}").json()
    assert shown["status"] == "queued" and shown["repo"] == "evals-org/mlflow"
    assert "model-x" not in str(shown)


def test_an_invalid_task_lists_every_error_by_field(client, services):
    bad = TASK | {"prompt": "", "outputs": TASK["outputs"] * 2, "extra": 1}
    response = client.post("/api/tasks", json=bad)
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"prompt", "outputs", "extra"}
    assert services.queue(queue.PAIRS).count == 0


def test_an_oversized_task_is_413(client):
    response = client.post("/api/tasks", content=b"{}", headers={"Content-Length": str(31 * 2**20)})
    assert response.status_code == 413


def test_an_unknown_task_is_404(client):
    assert client.get("/api/tasks/999").status_code == 404


def test_a_tasks_judgments_need_a_token_and_a_task(client):
    task_id = client.post("/api/tasks", json=TASK).json()["id"]
    assert client.get(f"/api/tasks/{task_id}/judgments").json() == []
    assert client.get("/api/tasks/999/judgments").status_code == 404
    del client.headers["Authorization"]
    assert client.get(f"/api/tasks/{task_id}/judgments").status_code == 401
