"""`tandem stats` and GET /api/stats on a synthetic database: the same report, the same filters."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.infra.tokens import Scope
from tests.stats_synthetic import Plan
from tests.support.cli import run
from tests.support.statistics import store, truth
from tests.support.tokens import new_token

PLAN = Plan(models=4, pairs=40, raters=4, raters_per_pair=3, tie_share=0.1, always_a=("rater-02",), seed=11)


@pytest.fixture
def client(services):
    store(services.storage, PLAN)  # every task of the plan is the default team's
    with TestClient(create_app(services)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {new_token(services)}"
        yield test_client


def test_the_api_reports_on_the_filtered_judgments(client):
    report = client.get("/api/stats", params={"bootstrap": 20}).json()
    assert report["judgments"] == len(truth(PLAN))
    assert report["bootstrap"] == 20
    assert {m["model"] for m in report["ranking"]["models"]} == set(PLAN.model_names)
    assert [r["rater"] for r in report["raters"] if r["position_bias"]["p_a"] == 1.0] == ["rater-02"]
    assert "pairs" not in report["agreement"]

    params = [
        ("repo", "evals/mirror-0"),
        ("metadata", "suite=s1"),
        ("model", "model-00"),
        ("model", "model-01"),
        ("model", "model-02"),
        ("bootstrap", "0"),
        ("pairs", "true"),
    ]
    filtered = client.get("/api/stats", params=params).json()
    expected = [
        row
        for row in truth(PLAN, keep=lambda p: p % 2 == 0 and p % 3 == 1)
        if {row[3], row[4]} <= {"model-00", "model-01", "model-02"}
    ]
    assert filtered["judgments"] == len(expected) > 0
    assert {(p["task_id"], p["round"]) for p in filtered["agreement"]["pairs"]} <= {row[:2] for row in expected}


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"since": "yesterday"}, "since 'yesterday'"),
        ({"metadata": "suite"}, "metadata 'suite'"),
        ({"round": 0}, "round 0"),
    ],
)
def test_bad_filters_are_400_naming_them(client, params, problem):
    response = client.get("/api/stats", params=params)
    assert response.status_code == 400 and problem in response.json()["message"]


def test_the_api_needs_a_token(client):
    del client.headers["Authorization"]
    assert client.get("/api/stats").status_code == 401


def test_a_team_sees_statistics_of_its_own_tasks_only(client, services):
    assert client.get("/api/stats", params={"bootstrap": 0}).json()["judgments"] == len(truth(PLAN))
    other = {"Authorization": f"Bearer {new_token(services, team='other-lab')}"}
    report = client.get("/api/stats", params={"bootstrap": 0}, headers=other).json()
    assert report["judgments"] == 0 and report["raters"] == []
    no_read = {"Authorization": f"Bearer {new_token(services, scopes=(Scope.SUBMIT,))}"}
    assert client.get("/api/stats", headers=no_read).status_code == 403


def test_the_command_prints_the_same_report_as_json_or_tables(client, settings, tmp_path):
    env = {"TANDEM_DATABASE_URL": settings.database_url, "TANDEM_REDIS_URL": settings.redis_url}
    result = run("stats", "--format", "json", "--bootstrap", "30", "--seed", "5", "--round", "1", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == client.get("/api/stats", params={"bootstrap": 30, "seed": 5, "round": 1}).json()
    assert shown["judgments"] == len(truth(PLAN, keep=lambda p: p % 4 != 3))

    table = run("stats", "--bootstrap", "30", cwd=tmp_path, **env)
    assert table.returncode == 0, table.stderr
    assert "rank(UB)" in table.stdout and "always A" in table.stdout and "n/a" in table.stdout

    bad = run("stats", "--metadata", "suite", cwd=tmp_path, **env)
    assert (bad.returncode, bad.stderr.strip()) == (1, "error: metadata 'suite': use KEY=VALUE, like suite=x")
