"""The HTTP API: bearer tokens, task submission with every error listed, task status."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.infra import queue, tokens
from tandem.infra.models import ApiToken, Installation, Repository
from tandem.infra.tokens import Scope
from tests.support.tokens import new_token

TASK = {
    "repo": "evals-org/mlflow",
    "base": "main",
    "prompt": "Fix it.",
    "outputs": [{"model": "model-x", "patch": "diff"}, {"model": "model-y", "files": {"a.py": "x"}}],
}


ALL_SCOPES = list(Scope)


def api_token(services, name: str, team: str = "team-a", scopes=ALL_SCOPES) -> str:
    """A token, of team-a and with every scope unless told otherwise."""
    return new_token(services, name, team=team, scopes=scopes)


@pytest.fixture
def app_client(services):
    with services.storage.transaction() as session:
        session.add(Installation(id=1, account_login="evals-org", account_id=1, account_type="Organization"))
        session.add(Repository(id=1, installation_id=1, full_name="evals-org/mlflow"))
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.fixture
def client(app_client, services):
    app_client.headers["Authorization"] = f"Bearer {api_token(services, 'research-team')}"
    return app_client


def test_tokens_are_stored_only_as_hashes(services):
    token = api_token(services, "ci", scopes=[Scope.READ])
    with services.storage.transaction() as session:
        [row] = session.query(ApiToken).all()
        assert token not in (row.token_hash, row.name)
        assert tokens.authenticate(session, token) == tokens.Client("ci", "team-a", frozenset({Scope.READ}))
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
    assert job.kwargs["task_id"] == task_id
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


# --- teams and scopes ---------------------------------------------------------------------------


def test_a_task_is_seen_only_by_its_own_teams_tokens(client, services):
    task_id = client.post("/api/tasks", json=TASK).json()["id"]
    teammate = {"Authorization": f"Bearer {api_token(services, 'teammate', team='team-a')}"}
    other = {"Authorization": f"Bearer {api_token(services, 'other-lab', team='team-b')}"}

    assert client.get(f"/api/tasks/{task_id}", headers=teammate).json()["team"] == "team-a"
    assert client.get(f"/api/tasks/{task_id}/judgments", headers=teammate).status_code == 200
    for path in (f"/api/tasks/{task_id}", f"/api/tasks/{task_id}/judgments"):
        hidden = client.get(path, headers=other)
        missing = client.get(path.replace(str(task_id), str(task_id + 1)), headers=other)
        # Another team's task is answered exactly as a task that does not exist.
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["message"] == f"no task {task_id}"
        assert "team-a" not in hidden.text


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ([Scope.SUBMIT], {"submit"}),
        ([Scope.READ], {"read"}),
        ([Scope.EXPORT], {"export"}),
        ([Scope.RUNNER], set()),
        ([Scope.SUBMIT, Scope.READ], {"submit", "read"}),
    ],
)
def test_a_token_does_only_what_its_scopes_allow(client, services, scopes, allowed):
    task_id = client.post("/api/tasks", json=TASK).json()["id"]
    client.headers["Authorization"] = f"Bearer {api_token(services, 'scoped', scopes=scopes)}"
    answers = {
        "submit": client.post("/api/tasks", json=TASK),
        "read": client.get(f"/api/tasks/{task_id}"),
        "export": client.get(f"/api/tasks/{task_id}/judgments"),
    }
    assert {name for name, answer in answers.items() if answer.is_success} == allowed
    for name, answer in answers.items():
        if name not in allowed:
            assert answer.status_code == 403
            assert f"lacks the {name} scope" in answer.json()["message"]


def test_a_revoked_token_stops_working(client, services):
    assert client.get("/api/tasks/1").status_code == 404
    with services.storage.transaction() as session:
        tokens.revoke_token(session, "research-team")
    answer = client.get("/api/tasks/1")
    assert answer.status_code == 401 and answer.json()["message"] == "unknown or revoked API token"
    with services.storage.transaction() as session, pytest.raises(tokens.TandemError, match="revoked already"):
        tokens.revoke_token(session, "research-team")


def test_scopes_are_named_and_checked():
    assert tokens.parse_scopes(["read,export", "submit", "read"]) == [Scope.SUBMIT, Scope.READ, Scope.EXPORT]
    with pytest.raises(tokens.TandemError, match="unknown scope 'admin'"):
        tokens.parse_scopes(["read", "admin"])
    with pytest.raises(tokens.TandemError, match="at least one scope"):
        tokens.parse_scopes([" , "])


# --- one error shape, and no 500 ----------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"repo": "evals-org/mlflow", "metadata": ' + b"[" * depth + b"]" * depth + b"}"


def test_deeply_nested_json_is_a_400(client):
    for depth in (100_000, 1000, 33):
        answer = client.post("/api/tasks", content=nested(depth), headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, depth
    shallow = client.post("/api/tasks", content=TASK_JSON_WITH_METADATA, headers={"Content-Type": "application/json"})
    assert shallow.status_code == 202, shallow.text


TASK_JSON_WITH_METADATA = (
    b'{"repo": "evals-org/mlflow", "base": "main", "prompt": "Fix it.", "metadata": {"deep": '
    + b"[" * 30
    + b"]" * 30
    + b'}, "outputs": [{"model": "model-x", "patch": "diff"}, {"model": "model-y", "files": {"a.py": "x"}}]}'
)


@pytest.mark.parametrize("task_id", ["99999999999999999999", str(2**31), str(2**63), "0", "-1"])
def test_an_out_of_range_task_id_is_a_404(client, task_id):
    for path in (f"/api/tasks/{task_id}", f"/api/tasks/{task_id}/judgments"):
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json() == {"message": f"no task {int(task_id)}", "errors": []}


def error_requests(client, services):
    """One request for each way the API refuses one."""
    task_id = client.post("/api/tasks", json=TASK).json()["id"]
    other_team = {"Authorization": f"Bearer {api_token(services, 'other', team='team-b')}"}
    read_only = {"Authorization": f"Bearer {api_token(services, 'reader', scopes=[Scope.READ])}"}
    json_body = {"Content-Type": "application/json"}
    return {
        "no token": client.get("/api/tasks/1", headers={"Authorization": ""}),
        "not a bearer token": client.get("/api/tasks/1", headers={"Authorization": "Basic abc"}),
        "unknown token": client.get("/api/tasks/1", headers={"Authorization": "Bearer tandem_nope"}),
        "missing scope": client.post("/api/tasks", json=TASK, headers=read_only),
        "missing task": client.get("/api/tasks/999"),
        "other team's task": client.get(f"/api/tasks/{task_id}", headers=other_team),
        "out-of-range id": client.get("/api/tasks/99999999999999999999/judgments"),
        "not an id": client.get("/api/tasks/abc"),
        "unknown route": client.get("/api/nothing"),
        "wrong method": client.delete(f"/api/tasks/{task_id}"),
        "not JSON": client.post("/api/tasks", content=b"{", headers=json_body),
        "too deep": client.post("/api/tasks", content=nested(5000), headers=json_body),
        "invalid task": client.post("/api/tasks", json=TASK | {"prompt": ""}),
        "too large": client.post("/api/tasks", content=b"{}", headers={"Content-Length": str(31 * 2**20)}),
    }


def test_every_api_error_has_one_shape(client, services):
    answers = error_requests(client, services)
    for name, answer in answers.items():
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
        body = answer.json()
        assert set(body) == {"message", "errors"}, (name, body)
        assert isinstance(body["message"], str) and body["message"], name
        assert all(set(error) == {"field", "problem"} for error in body["errors"]), (name, body)
    fields = {e["field"] for e in answers["invalid task"].json()["errors"]}
    assert fields == {"prompt"}


def test_an_unexpected_failure_is_a_500_in_the_same_shape(services):
    """The database is gone: the client learns that, in the one shape, and nothing of the internals."""
    import dataclasses

    from tandem.infra.db import Storage

    broken = dataclasses.replace(services, storage=Storage.from_url("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    with TestClient(create_app(broken), raise_server_exceptions=False) as test_client:
        answer = test_client.get("/api/tasks/1", headers={"Authorization": "Bearer tandem_x"})
    assert answer.status_code == 500
    assert answer.json() == {"message": "internal error; the server's log has the details", "errors": []}
