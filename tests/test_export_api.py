"""GET /api/export: the formats over HTTP, streamed, for the token's team only."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.domain.export_formats import FORMATS
from tandem.infra.tokens import Scope
from tests.support.cli import one_error_line, run
from tests.support.export_data import build
from tests.support.tokens import new_token


@pytest.fixture
def api(services):
    tasks = build(services.storage)
    with TestClient(create_app(services)) as client:
        yield client, tasks


def get(client, token: str, **params):
    return client.get("/api/export", params=params, headers={"Authorization": f"Bearer {token}"})


def lines(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def test_each_team_exports_only_its_own_tasks(api, services):
    client, tasks = api
    ours = new_token(services, scopes=(Scope.EXPORT,))
    theirs = new_token(services, team="other-team", scopes=(Scope.EXPORT,))
    for name in FORMATS:
        for token, _own, other in ((ours, {"model-x", "model-y"}, "model-p"), (theirs, {"model-p"}, "model-x")):
            response = get(client, token, format=name, include_unapproved="true")
            assert other not in response.text
            assert lines(response) or (name == "ratings" and token == theirs)
    battles = lines(get(client, theirs, format="battles"))
    assert [(row["task_id"], row["model_a"]) for row in battles] == [(tasks["theirs"], "model-p")]


def test_the_filters_and_parquet(api, services):
    client, tasks = api
    token = new_token(services, scopes=(Scope.EXPORT,))
    rows = lines(get(client, token, format="trl", round=2, metadata="suite=s2", conversational="true"))
    assert [(row["task_id"], row["round"], row["prompt"][0]["role"]) for row in rows] == [(tasks["multi"], 2, "user")]
    response = get(client, token, format="battles", parquet="true", ties="drop")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert set(table.column("winner").to_pylist()) == {"model_a", "model_b"}


@pytest.mark.parametrize(
    "params, status, problem",
    [
        ({"format": "csv"}, 400, "format 'csv'"),
        ({"ties": "maybe"}, 400, "ties 'maybe'"),
        ({"metadata": "suite"}, 400, "metadata 'suite'"),
        ({"round": 0}, 400, "round 0"),
    ],
)
def test_bad_options_are_400_naming_them(api, services, params, status, problem):
    client, _tasks = api
    response = get(client, new_token(services, scopes=(Scope.EXPORT,)), **params)
    assert response.status_code == status and problem in response.json()["message"]


def test_the_export_needs_the_export_scope(api, services):
    client, _tasks = api
    assert get(client, new_token(services, scopes=(Scope.READ,))).status_code == 403
    assert client.get("/api/export").status_code == 401


def test_the_readme_commands_give_a_dpo_file_and_a_leaderboard(api, services, settings, tmp_path):
    client, tasks = api
    env = {"TANDEM_DATABASE_URL": settings.database_url, "TANDEM_REDIS_URL": settings.redis_url}
    result = run("export", "--format", "trl", "dpo.jsonl", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    # The CLI exports every team's tasks, then prints the token of the next incremental export.
    assert result.stderr.splitlines()[0] == "exported 5 rows (trl)" and "cursor: " in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert {(row["task_id"], row["chosen_model"]) for row in rows} >= {
        (tasks["multi"], "model-y"),
        (tasks["theirs"], "model-p"),
    }
    token = new_token(services, scopes=(Scope.EXPORT,))
    assert lines(get(client, token, format="trl")) == [row for row in rows if row["task_id"] != tasks["theirs"]]

    parquet = run("export", "--format", "battles", "--ties", "drop", "battles.parquet", cwd=tmp_path, **env)
    assert parquet.returncode == 0, parquet.stderr
    assert pq.read_table(tmp_path / "battles.parquet").num_rows == 5
    assert run("stats", "--bootstrap", "10", cwd=tmp_path, **env).returncode == 0

    bad = run("export", "--format", "csv", "out.csv", cwd=tmp_path, **env)
    assert one_error_line(bad).startswith("error: format 'csv': use one of jsonl, trl")
    assert not (tmp_path / "out.csv").exists()
