"""CI results per side and round, and votes returned to their raters, end to end: the emulator
(with a CI app posting check runs and commit statuses) -> webhooks -> worker -> database, and
Tandem's answers back on GitHub. The `github` fixture's blinding scan checks everything Tandem
wrote to GitHub."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.main import create_app
from tandem.domain import ci as ci_results
from tandem.domain import export, repo_config, rounds, tasks
from tandem.domain.rounds import apply
from tandem.domain.statistics.queries import Filters
from tandem.domain.statistics.report import statistics
from tandem.infra import queue, tokens
from tandem.infra.models import CiCheck, DeadLetter, Judgment, Task
from tests import github_views as views
from tests.conftest import MIRROR_CONFIG, run_jobs, settle, tandem_env
from tests.support.ci import CI_EVENTS, bot_comments, with_ci
from tests.support.rounds import answers, ask_followup

REPO = "evals-org/mlflow"


def export_rows(services) -> list[dict]:
    out = io.StringIO()
    with services.storage.transaction() as session:
        export.export_judgments(session, out, repo=REPO)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_ci_of_both_sides_reaches_the_task_view_the_export_and_the_statistics(github, services, pair):
    ci = with_ci(github)
    heads = pair["heads"]
    passing = ci.check_run(REPO, heads["A"], "tests", details_url="https://ci.example/runs/1")
    failing = ci.check_run(REPO, heads["B"], "tests", details_url="https://ci.example/runs/2")
    ci.status(REPO, heads["A"], "pending", "ci/build")
    ci.status(REPO, heads["B"], "pending", "ci/build")
    settle(github, services)
    with services.storage.transaction() as session:
        [first] = tasks.describe(session.get(Task, pair["task_id"]))["rounds"]
    assert first["ci"] == {"A": {"state": "pending", "failing": []}, "B": {"state": "pending", "failing": []}}

    ci.complete(passing, "success")
    ci.complete(failing, "failure")
    ci.status(REPO, heads["A"], "success", "ci/build", target_url="https://ci.example/builds/1")
    ci.status(REPO, heads["B"], "success", "ci/build", target_url="https://ci.example/builds/2")
    settle(github, services)
    assert {d.event for d in github.deliveries if d.app.slug == "tandem"} >= set(CI_EVENTS)
    client = TestClient(create_app(services))
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "lab", team="default", scopes=["read", "export"])
        kinds = {(check.letter, check.kind, check.name) for check in session.scalars(select(CiCheck))}
    assert ("A", "check_run", "Tandem") not in kinds, "Tandem's own check run is not CI"
    assert kinds == {
        (letter, kind, name)
        for letter in "AB"
        for kind, name in (("check_run", "tests"), ("status", "ci/build"), ("check_suite", "ci"))
    }
    shown = client.get(f"/api/tasks/{pair['task_id']}", headers={"Authorization": f"Bearer {token}"}).json()
    assert shown["rounds"][0]["ci"] == {
        "A": {"state": "success", "failing": []},
        "B": {"state": "failure", "failing": [{"name": "tests", "url": f"{github.url}/{REPO}/runs/{failing.id}"}]},
    }

    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A\nB's tests fail.")
    github.as_user("rater-two").comment(REPO, pair["B"], "/prefer B slightly\nSmaller change.")
    settle(github, services)
    reviewer = github.as_user("reviewer-one")
    reviewer.comment(REPO, pair["A"], "/approve @rater-one")
    reviewer.comment(REPO, pair["A"], "/approve @rater-two")
    settle(github, services)

    rows = export_rows(services)
    assert len(rows) == 2
    for row in rows:
        assert row["ci_at_vote"] == {"A": "success", "B": "failure"}
        assert row["round_ci"]["A"]["state"] == "success" and row["round_ci"]["B"]["state"] == "failure"
        assert [f["name"] for f in row["round_ci"]["B"]["failing"]] == ["tests"]
    with services.storage.transaction() as session:
        report = statistics(session, Filters(), bootstrap=0)
    assert report["ci"]["votes_one_side_passing"] == 2
    assert report["ci"]["passing_side_win_rate"] == 0.5
    assert report["ci"]["votes_with_ci_failed"] == 2
    assert report["ci"]["ranking_without_ci_failed"]["models"] == []
    assert len(report["ranking"]["models"]) == 2
    # CI results are the mirror's: Tandem wrote nothing about them but its own check run.
    said = [body for number in (pair["A"], pair["B"]) for body in bot_comments(github, number)]
    assert not any("tests" in body or "ci/build" in body for body in said)


def test_with_require_ci_a_round_takes_votes_only_once_both_sides_ci_has_finished(github, services, pair):
    ci = with_ci(github)
    github.commit_files(REPO, {".github/tandem.yml": MIRROR_CONFIG + "require_ci: true\n"})
    repo_config.forget(services, REPO)
    heads = pair["heads"]
    run_a = ci.check_run(REPO, heads["A"], "tests")
    ci.status(REPO, heads["B"], "pending", "ci/build")
    settle(github, services)

    early = github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    ci.complete(run_a, "success")  # B's CI still runs
    settle(github, services)
    with services.storage.transaction() as session:
        assert session.scalars(select(Judgment)).all() == []
    [reply] = [body for body in bot_comments(github, pair["A"]) if "@rater-one" in body]
    assert "round 1 takes votes once both options' CI has finished (`require_ci` is on" in reply
    [refused] = [c for c in views.comments(github, REPO, pair["A"]) if c["id"] == early.id]
    assert ("tandem[bot]", "confused") in refused["reactions"]
    assert not any("CI has finished" in body for body in bot_comments(github, pair["B"]))

    ci.status(REPO, heads["B"], "failure", "ci/build")
    settle(github, services)
    for number in (pair["A"], pair["B"]):
        assert [body for body in bot_comments(github, number) if body.startswith("**Tandem:** CI")] == [
            "**Tandem:** CI has finished on both options for round 1. "
            "Votes count from now on: `/prefer A`, `/prefer B`, `/prefer tie` or `/prefer neither`."
        ]
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    with services.storage.transaction() as session:
        [vote] = session.scalars(select(Judgment)).all()
        assert (vote.verdict, vote.ci_state_a, vote.ci_state_b) == ("A", "success", "failure")


def test_with_require_ci_the_raters_are_told_when_ci_finished_before_the_round_opened(github, services, pair):
    ci = with_ci(github)
    github.commit_files(REPO, {".github/tandem.yml": MIRROR_CONFIG + "require_ci: true\n"})
    repo_config.forget(services, REPO)
    ask_followup(github, services, pair)
    rounds.submit_outputs(services, pair["task_id"], 2, answers(), submitted_by="runner")

    def ci_runs(step: str) -> None:  # round 2's heads are pushed; its CI finishes before it opens
        if step == "pushed":
            with services.storage.transaction() as session:
                heads = [side.head_sha for side in session.get(Task, pair["task_id"]).pair.sides]
            for head in heads:
                ci.check_run(REPO, head, "tests", status="completed", conclusion="success")
            github.drain()
            run_jobs(services, [queue.WEBHOOKS])

    assert apply.apply_round(services, pair["task_id"], 2, step_done=ci_runs) == "open"
    settle(github, services)
    with services.storage.transaction() as session:
        assert session.get(Task, pair["task_id"]).rounds[1].ci_finished_at is not None
    for number in (pair["A"], pair["B"]):
        assert [body for body in bot_comments(github, number) if body.startswith("**Tandem:** CI")] == [
            "**Tandem:** CI has finished on both options for round 2. "
            "Votes count from now on: `/prefer A`, `/prefer B`, `/prefer tie` or `/prefer neither`."
        ]


def test_another_apps_check_of_the_same_name_and_a_later_time_cannot_hide_a_failure(github, services, pair):
    ci = with_ci(github)
    github.register_app(slug="other", name="Other", events=[])
    github.install_app("evals-org", repositories="all", app="other")
    heads = pair["heads"]
    ci.check_run(REPO, heads["A"], "tests", status="completed", conclusion="failure")
    settle(github, services)
    github.as_app("other").check_run(REPO, heads["A"], "tests", status="completed", conclusion="success")
    settle(github, services)
    with services.storage.transaction() as session:
        task_id = session.get(Task, pair["task_id"]).id
        assert ci_results.heads_state(session, task_id, heads["A"], heads["B"])[0] == "failure"
        assert len(session.scalars(select(CiCheck).where(CiCheck.head_sha == heads["A"])).all()) == 2


def test_a_returned_vote_is_resubmitted_reviewed_again_and_approved(github, services, pair, tmp_path):
    one, two, reviewer = github.as_user("rater-one"), github.as_user("rater-two"), github.as_user("reviewer-one")
    one.comment(REPO, pair["A"], "/prefer A")
    two.comment(REPO, pair["B"], "/prefer tie\nBoth fix it.")
    settle(github, services)
    reviewer.comment(REPO, pair["B"], "/reject @rater-one Say what A does @evals-org/raters #1 better.")
    reviewer.comment(REPO, pair["B"], "/approve @rater-two")
    settle(github, services)
    told = [body for body in bot_comments(github, pair["B"]) if "sent back" in body]
    assert told == [
        "@reviewer-one\n\n@reviewer-one sent back @rater-one's vote in round 1: "
        "`Say what A does @evals-org/raters #1 better.`. @rater-one, vote again with `/prefer` (or edit your "
        "vote) to resubmit it for review."
    ]
    reviewer.comment(REPO, pair["A"], "/approve @rater-one")
    settle(github, services)
    assert any("was sent back and has not been resubmitted" in body for body in bot_comments(github, pair["A"]))

    env = tandem_env(services, tmp_path)
    queue = subprocess.run(
        [str(Path(sys.executable).with_name("tandem")), "review", "queue", "--status", "returned", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert queue.returncode == 0, queue.stderr
    listed = json.loads(queue.stdout)
    assert [(item["rater"], item["returned_by"]) for item in listed] == [("rater-one", "reviewer-one")]

    one.comment(REPO, pair["A"], "/prefer A much\nA quotes the package name; B still runs a shell.")
    settle(github, services)
    assert "reviewer-one" in {p["number"]: p for p in views.pulls(github, REPO)}[pair["A"]]["requested_reviewers"]
    client = TestClient(create_app(services))
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "lab", team="default", scopes=["read"])
        other = tokens.create_token(session, "other-lab", team="other", scopes=["read"])
    waiting = client.get("/api/reviews?status=waiting", headers={"Authorization": f"Bearer {token}"}).json()
    assert [(r["rater"], r["resubmitted"], r["task_id"]) for r in waiting["reviews"]] == [
        ("rater-one", True, pair["task_id"])
    ]
    assert client.get("/api/reviews", headers={"Authorization": f"Bearer {other}"}).json()["reviews"] == []

    reviewer.comment(REPO, pair["A"], "/approve @rater-one")
    settle(github, services)
    assert {p["number"]: p["state"] for p in views.pulls(github, REPO, state="all")} == {
        pair["A"]: "closed",
        pair["B"]: "closed",
    }
    rows = {(row["rater_login"], row["current"]): row for row in export_rows(services)}
    final = rows[("rater-one", True)]
    assert [step["step"] for step in final["review_history"]] == ["submitted", "returned", "resubmitted", "approved"]
    assert final["review_history"][1]["reason"] == "Say what A does @evals-org/raters #1 better."
    assert final["returned_before_approval"] and final["review_state"] == "approved"
    assert not rows[("rater-two", True)]["returned_before_approval"]
    with services.storage.transaction() as session:
        report = statistics(session, Filters(), bootstrap=0)
    assert {r["rater"]: r["returned"] for r in report["raters"]} == {"rater-one": 1, "rater-two": 0}


def test_a_notice_is_posted_once_per_occasion_even_when_its_words_come_again(github, services, pair):
    """A vote returned and resubmitted twice in a round asks the reviewers twice, with the same
    words; a job run again for the same resubmission does not post again."""
    from tandem.domain import pr_notices
    from tandem.infra.models import Repository

    with services.storage.transaction() as session:
        installation_id = session.scalars(select(Repository.installation_id).where(Repository.full_name == REPO)).one()
    client = services.github.as_installation(installation_id)
    before = len(bot_comments(github, pair["A"]))
    for occasion in ("resubmitted-1", "resubmitted-1", "resubmitted-2"):
        pr_notices._comment_once(
            services, client, REPO, pair["A"], "@reviewer-one: please look again", occasion=occasion
        )
    assert bot_comments(github, pair["A"])[before:] == ["@reviewer-one: please look again"] * 2


def test_reviewers_are_not_asked_again_about_a_vote_withdrawn_in_the_same_comment(github, services, pair):
    one, reviewer = github.as_user("rater-one"), github.as_user("reviewer-one")
    one.comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    reviewer.comment(REPO, pair["A"], "/reject @rater-one Say why.")
    settle(github, services)
    # The /prefer resubmits the returned vote, and the /undo below it withdraws it again.
    one.comment(REPO, pair["A"], "/prefer B\n/undo")
    settle(github, services)
    pulls = {p["number"]: p for p in views.pulls(github, REPO)}
    assert "reviewer-one" not in pulls[pair["A"]]["requested_reviewers"]
    assert not [body for body in bot_comments(github, pair["A"]) if "resubmitted" in body.lower()]
    with services.storage.transaction() as session:  # the vote is withdrawn: none of rater-one's stands
        standing = select(Judgment).where(Judgment.rater_login == "rater-one", Judgment.superseded_at.is_(None))
        assert session.scalars(standing).all() == []


def test_a_broken_tandem_yml_does_not_keep_ci_reports_from_being_recorded(github, services, pair):
    """A round waiting for CI has the report's config read before the transaction; a config that
    does not parse must not fail (and at last park) every CI report of the repository."""
    ci = with_ci(github)
    github.commit_files(REPO, {".github/tandem.yml": "mirror: true\nrubric: {scale: [5, 1]}\n"})
    repo_config.forget(services, REPO)
    ci.status(REPO, pair["heads"]["A"], "pending", "ci/build")
    settle(github, services)
    with services.storage.transaction() as session:
        assert [(c.letter, c.name) for c in session.scalars(select(CiCheck))] == [("A", "ci/build")]
        assert session.scalars(select(DeadLetter)).all() == []
