"""Gold tasks: validated, stored, scored in the statistics, marked in the export, and invisible on
GitHub: after a whole judging flow, nothing the emulator stores mentions them, and a rater sees
a gold task exactly as any other."""

from __future__ import annotations

import io
import json
import re
import subprocess

import pytest

from tandem.domain import export
from tandem.domain.statistics.queries import Filters
from tandem.domain.statistics.report import statistics
from tandem.domain.task_spec import InvalidTask, parse_task
from tandem.infra.models import Task
from tests import github_views as views
from tests.conftest import settle, small_task, submit_task

REPO = "evals-org/mlflow"
NOTE = "Option quoting-7f3e is the only correct fix"
GOLD = {"preferred": "model-x-2026-10", "note": NOTE}


@pytest.mark.parametrize("preferred", ["model-x-2026-10", "model-y-2026-09", "tie", "neither"])
def test_gold_prefers_one_of_the_tasks_models_a_tie_or_neither(blinding, preferred):
    spec = parse_task(small_task(blinding, gold={"preferred": preferred, "note": "why"}))
    assert spec.gold.preferred == preferred


@pytest.mark.parametrize(
    "gold, field",
    [
        ({"preferred": "model-z"}, "gold.preferred"),
        ({"note": "no answer"}, "gold.preferred"),
        ({"preferred": "tie", "secret": 1}, "gold.secret"),
    ],
)
def test_a_gold_answer_that_names_no_model_is_refused_by_field(blinding, gold, field):
    with pytest.raises(InvalidTask) as refused:
        parse_task(small_task(blinding, gold=gold))
    assert [error["field"] for error in refused.value.errors] == [field]


def opened(github, services, blinding, **overrides) -> dict:
    task_id = submit_task(services, blinding, **overrides)
    settle(github, services)
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "open", task.failure_reason
        return {"task_id": task_id} | {side.letter: (side.pr_number, side.output.model) for side in task.pair.sides}


def everything_stored(emu) -> str:
    """All the emulator holds: repositories, labels, issues and PRs, comments, reviews, review
    comments, check runs, webhook payloads, and every ref, commit message and change in git."""
    state = emu.core.state
    parts = []
    for repo in state.repos.values():
        parts += [repo.full_name, repo.description or "", *repo.topics]
        parts += [f"{label.name} {label.description or ''}" for label in repo.labels.values()]
        for issue in repo.issues.values():
            parts += [issue.title, issue.body or "", *(label.name for label in issue.labels)]
            if issue.pr is not None:
                parts += [issue.pr.head_ref, issue.pr.base_ref]
        for args in (
            ["for-each-ref", "--format=%(refname) %(objectname)"],
            ["log", "--all", "-p", "--format=%H %an %ae%n%B"],
        ):
            parts.append(
                subprocess.run(
                    ["git", "--git-dir", str(repo.git_dir), *args], capture_output=True, text=True, check=True
                ).stdout
            )
    parts += [comment.body for comment in state.issue_comments.values()]
    parts += [review.body for review in state.reviews.values()]
    parts += [f"{c.path} {c.body}" for c in state.review_comments.values()]
    parts += [json.dumps([run.name, run.external_id, run.details_url, run.output]) for run in state.check_runs.values()]
    parts += [delivery.body.decode(errors="replace") for delivery in state.deliveries]
    return "\n".join(parts)


def rater_view(github, pair: dict) -> list:
    """What a rater sees of a pair, with the numbers that differ between any two tasks masked."""

    def masked(text: str) -> str:
        return re.sub(r"[0-9a-f]{7,40}|\d+", "#", text)

    pulls = {p["number"]: p for p in views.pulls(github, REPO, state="all")}
    seen = []
    for letter in ("A", "B"):
        pull = pulls[pair[letter][0]]
        [check] = views.check_runs(github, REPO, pull["head_sha"])
        comments = [masked(c["body"]) for c in views.comments(github, REPO, pull["number"])]
        seen.append(
            (
                masked(pull["title"]),
                masked(pull["body"]),
                sorted(pull["labels"]),
                pull["draft"],
                masked(json.dumps([check["name"], check["output"]])),
                comments,
            )
        )
    return seen


def test_a_gold_task_leaves_no_trace_on_github_and_scores_its_raters(github, services, blinding):
    gold = opened(github, services, blinding, gold=GOLD)
    plain = opened(github, services, blinding)
    # A rater cannot tell them apart: same titles, bodies, labels, checks and comments.
    assert rater_view(github, gold) == rater_view(github, plain)

    expected = next(letter for letter in ("A", "B") if gold[letter][1] == GOLD["preferred"])
    other = "B" if expected == "A" else "A"
    for pair in (gold, plain):
        github.as_user("rater-one").comment(REPO, pair["A"][0], f"/prefer {expected}\nIt quotes the argument.")
        github.as_user("rater-two").comment(REPO, pair["A"][0], f"/prefer {other}")
        settle(github, services)
        reviewer = github.as_user("reviewer-one")
        reviewer.comment(REPO, pair["B"][0], "/approve @rater-one")
        reviewer.comment(REPO, pair["B"][0], "/approve @rater-two")
        settle(github, services)

    stored = everything_stored(github)
    # The scan sees what Tandem wrote: the prompt in the PR bodies, the outputs in git.
    assert "Fix the command injection." in stored and "X = 1" in stored and "/prefer" in stored
    assert NOTE not in stored and "quoting-7f3e" not in stored
    marker = re.search(r"\bgold\b", stored, re.IGNORECASE)
    assert marker is None, stored[marker.start() - 300 : marker.end() + 100]
    assert GOLD["preferred"] not in stored

    with services.storage.transaction() as session:
        report = statistics(session, Filters(), bootstrap=0)
    accuracy = {r["rater"]: r["gold_accuracy"] for r in report["raters"]}
    assert accuracy == {"rater-one": 1.0, "rater-two": 0.0}

    def rows(**options) -> list[dict]:
        out = io.StringIO()
        with services.storage.transaction() as session:
            export.export_judgments(session, out, **options)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    everything = rows()
    assert {(r["task_id"], r["gold"], json.dumps(r["gold_answer"])) for r in everything} == {
        (gold["task_id"], True, json.dumps(GOLD)),
        (plain["task_id"], False, "null"),
    }
    assert {r["task_id"] for r in rows(include_gold=False)} == {plain["task_id"]}
