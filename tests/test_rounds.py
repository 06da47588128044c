"""Rounds end to end against the emulator with real git: /followup, the runner's outputs, the
apply job on both PRs, votes in round 2, expiry, failures and bad input."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from tandem.domain import export, rounds, tasks
from tandem.domain.rounds import apply
from tandem.domain.task_spec import InvalidTask, OutputSpec, parse_task
from tandem.infra import queue
from tandem.infra.db import utcnow
from tandem.infra.errors import NotFound
from tandem.infra.models import Judgment, Round, Task
from tests import github_views as views
from tests.conftest import run_jobs, settle, small_task
from tests.support.rounds import FOLLOWUP, REPO, X, Y, answers, ask_followup
from tests.support.tasks import binary_literal
from workers import rounds as round_jobs


class Killed(BaseException):
    """A worker dying mid-job: not an Exception, so nothing in the job handles it."""


def git(github, *args: str) -> str:
    git_dir = str(github.repo(REPO).git_dir)
    return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, text=True, check=True).stdout


def state(services, task_id: int) -> tuple[str, list[tuple[int, str, str | None]]]:
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        return task.status, [(r.number, r.status, r.closed_reason) for r in task.rounds]


def branches(services, task_id: int) -> dict[str, str]:
    with services.storage.transaction() as session:
        return {side.letter: side.branch for side in session.get(Task, task_id).pair.sides}


def bot_comments(github, number: int, text: str) -> list[dict]:
    return [c for c in views.comments(github, REPO, number) if c["user"] == "tandem[bot]" and text in c["body"]]


def test_a_round_goes_from_followup_to_one_new_commit_per_pr_and_is_judged_on_its_heads(github, services, pair):
    task_id = pair["task_id"]
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    ask_followup(github, services, pair)
    assert state(services, task_id) == ("awaiting_outputs", [(1, "open", None), (2, "awaiting_outputs", None)])

    assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "accepted"
    settle(github, services)
    assert state(services, task_id) == ("open", [(1, "closed", "superseded"), (2, "open", None)])

    pulls = {p["number"]: p for p in views.pulls(github, REPO, state="all")}
    names = branches(services, task_id)
    new_heads = {}
    for letter in ("A", "B"):
        old, new = pair["heads"][letter], pulls[pair[letter]]["head_sha"]
        # Exactly one new commit, on the old head, by the neutral author at the same time on both sides.
        assert git(github, "rev-list", f"{old}..refs/heads/{names[letter]}").split() == [new]
        assert git(github, "rev-parse", f"{new}^").strip() == old
        new_heads[letter] = new
        body = pulls[pair[letter]]["body"]
        assert body.index("Fix the command injection.") < body.index(FOLLOWUP)
        assert set(pulls[pair[letter]]["labels"]) == {"tandem", "tandem:pending"}
        [check] = [c for c in views.check_runs(github, REPO, new) if c["name"] == "Tandem"]
        assert "Round 1" in check["output"]["summary"] and "Round 2" in check["output"]["summary"]
        [ready] = bot_comments(github, pair[letter], "round 2 is ready")
        assert "@rater-one" in ready["body"]
    stamps = {git(github, "log", "-1", "--format=%an %ae %at %cn %ce %ct %s", sha) for sha in new_heads.values()}
    assert len(stamps) == 1
    files = git(github, "show", f"{new_heads[(pair['models']['A'] == X and 'A') or 'B']}:tests/test_app.py")
    assert files == "def test(): pass\n"

    github.as_user("rater-two").comment(REPO, pair["B"], "/prefer B\nThe test helps.")
    settle(github, services)
    with services.storage.transaction() as session:
        votes = {
            (j.rater_login, number): (j.head_sha_a, j.head_sha_b)
            for j, number in session.execute(select(Judgment, Round.number).join(Round, Round.id == Judgment.round_id))
        }
    assert votes == {
        ("rater-one", 1): (pair["heads"]["A"], pair["heads"]["B"]),
        ("rater-two", 2): (new_heads["A"], new_heads["B"]),
    }

    out = io.StringIO()
    with services.storage.transaction() as session:
        export.export_judgments(session, out, task_id=task_id)
        view = tasks.describe(session.get(Task, task_id))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["kind"], r["round"], r["round_prompt"]) for r in rows] == [
        ("judgment", 1, "Fix the command injection."),
        ("judgment", 2, FOLLOWUP),
        ("round", 2, FOLLOWUP),
    ]
    assert (rows[1]["round_head_sha_a"], rows[1]["round_head_sha_b"]) == (new_heads["A"], new_heads["B"])
    assert [(r["number"], r["status"], r["author"], r["head_shas"]) for r in view["rounds"]] == [
        (1, "closed", "test", pair["heads"]),
        (2, "open", "rater-one", new_heads),
    ]

    # The same submission again is the same round; a different one is refused.
    assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "duplicate"
    with pytest.raises(rounds.RoundConflict, match="already accepted different outputs"):
        rounds.submit_outputs(services, task_id, 2, answers(" again"), submitted_by="runner")


def test_votes_wait_while_a_round_awaits_outputs_and_a_second_followup_is_told_why(github, services, pair):
    ask_followup(github, services, pair)
    github.as_user("rater-two").comment(REPO, pair["B"], "/prefer B")
    github.as_user("rater-two").comment(REPO, pair["B"], "/followup And <b>@everyone</b> `now`")
    settle(github, services)
    replies = [c["body"] for c in views.comments(github, REPO, pair["B"]) if c["user"] == "tandem[bot]"]
    assert any("round 2 is waiting for the models' answers" in r for r in replies)
    assert any("round 2 (asked by `rater-one`) is still waiting" in r for r in replies)
    # The command as written is quoted in a code span: no mention, no HTML.
    assert any("`` /followup And <b>@everyone</b> `now` ``" in r for r in replies)
    with services.storage.transaction() as session:
        assert session.scalars(select(Judgment)).all() == []
        assert len(session.scalars(select(Round)).all()) == 2


def test_bad_outputs_are_refused_with_a_clear_error_and_nothing_recorded(github, services, pair):
    task_id = pair["task_id"]
    with pytest.raises(rounds.RoundConflict, match="round 1 is open, not awaiting outputs"):
        rounds.submit_outputs(services, task_id, 1, answers(), submitted_by="runner")
    with pytest.raises(NotFound):
        rounds.submit_outputs(services, task_id, 7, answers(), submitted_by="runner")
    ask_followup(github, services, pair)
    wrong = [OutputSpec(model=X, files={"a": "1\n"}), OutputSpec(model="model-z", files={"a": "2\n"})]
    with pytest.raises(InvalidTask, match="give one output for each of the task's models"):
        rounds.submit_outputs(services, task_id, 2, wrong, submitted_by="runner")
    stale = "--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-import subprocess\n+import shlex\n"
    with pytest.raises(InvalidTask) as refused:
        rounds.submit_outputs(services, task_id, 2, [OutputSpec(model=X, patch=stale), answers()[1]], submitted_by="r")
    message = str(refused.value)
    assert X in message and "src/app.py" in message and "does not apply to its head" in message
    assert "Option" not in message and " A " not in message and " B " not in message
    same = [OutputSpec(model=X, files={"src/app.py": "Z\n"}), OutputSpec(model=Y, files={"src/app.py": "Z\n"})]
    with pytest.raises(InvalidTask):
        rounds.submit_outputs(services, task_id, 2, same, submitted_by="runner")
    assert state(services, task_id)[1][1] == (2, "awaiting_outputs", None)

    rounds.report_runner_failure(services, task_id, 2, model=Y, reason="the agent timed out after 600 s")
    with services.storage.transaction() as session:
        [failure] = tasks.describe(session.get(Task, task_id))["rounds"][1]["runner_failures"]
    assert (failure["model"], failure["reason"]) == (Y, "the agent timed out after 600 s")

    with services.storage.transaction() as session:
        session.get(Task, task_id).status = "closed"
    with pytest.raises(rounds.RoundConflict, match=f"task {task_id} is closed"):
        rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner")


def test_a_round_whose_outputs_never_come_expires_on_both_prs(github, services, pair):
    task_id = pair["task_id"]
    ask_followup(github, services, pair)
    assert round_jobs.expire_rounds(services) == []
    with services.storage.transaction() as session:
        session.scalars(select(Round).where(Round.number == 2)).one().expires_at = utcnow() - timedelta(seconds=1)
    assert len(round_jobs.expire_rounds(services)) == 1
    settle(github, services)
    assert state(services, task_id) == ("open", [(1, "open", None), (2, "closed", "expired")])
    for letter in ("A", "B"):
        assert len(bot_comments(github, pair[letter], "round 2 expired")) == 1
    with pytest.raises(rounds.RoundConflict, match="closed"):
        rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner")
    # Round 1 is current again: votes count there, and a new follow-up may ask again.
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    ask_followup(github, services, pair, body="Try once more.")
    assert state(services, task_id)[1][-1] == (3, "awaiting_outputs", None)
    with services.storage.transaction() as session:
        assert [n for (n,) in session.execute(select(Round.number).join(Judgment, Judgment.round_id == Round.id))] == [
            1
        ]


def test_a_push_to_a_side_during_a_round_fails_it_and_overwrites_nothing(github, services, pair):
    task_id = pair["task_id"]
    ask_followup(github, services, pair)
    names = branches(services, task_id)
    pushed = github.as_user("rater-one").push(REPO, {"src/extra.py": "EXTRA = 1\n"}, branch=names["B"])
    settle(github, services)
    assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "accepted"
    settle(github, services)
    assert state(services, task_id) == ("open", [(1, "open", None), (2, "closed", "failed")])
    refs = {letter: git(github, "rev-parse", f"refs/heads/{branch}").strip() for letter, branch in names.items()}
    assert refs == {"A": pair["heads"]["A"], "B": pushed}
    with services.storage.transaction() as session:
        [_, failed] = tasks.describe(session.get(Task, task_id))["rounds"]
    assert (
        "Option B changed on GitHub" in failed["failure_reason"]
        and "nothing was overwritten" in failed["failure_reason"]
    )
    for letter in ("A", "B"):
        [notice] = bot_comments(github, pair[letter], "round 2 failed")
        assert "Option B changed on GitHub" in notice["body"]


def steps_of_a_clean_apply(github, services, pair) -> list[str]:
    ask_followup(github, services, pair)
    rounds.submit_outputs(services, pair["task_id"], 2, answers(), submitted_by="runner")
    seen: list[str] = []
    assert apply.apply_round(services, pair["task_id"], 2, step_done=seen.append) == "open"
    settle(github, services)  # the queued job finds the round open and finished: it does nothing
    return seen


def test_the_apply_job_killed_after_any_step_and_run_again_leaves_one_commit_and_one_comment_per_pr(
    github, services, pair, blinding
):
    steps = steps_of_a_clean_apply(github, services, pair)
    assert len(steps) >= 12, steps
    for step in steps:
        github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")  # the open round gets a vote
        settle(github, services)
        data = small_task(blinding)
        task_id = tasks.submit(services, parse_task(data), "test")
        settle(github, services)
        with services.storage.transaction() as session:
            task = session.get(Task, task_id)
            numbers = {side.letter: side.pr_number for side in task.pair.sides}
            heads = {side.letter: side.head_sha for side in task.pair.sides}
        github.as_user("rater-one").comment(REPO, numbers["A"], f"/followup {FOLLOWUP}")
        settle(github, services)
        rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner")

        def kill(name, at=step):
            if name == at:
                raise Killed(at)

        with pytest.raises(Killed):
            apply.apply_round(services, task_id, 2, step_done=kill)
        settle(github, services)  # the retry: the queued job
        assert state(services, task_id)[1][-1] == (2, "open", None), step
        names = branches(services, task_id)
        for letter in ("A", "B"):
            assert len(git(github, "rev-list", f"{heads[letter]}..refs/heads/{names[letter]}").split()) == 1, step
            assert len(bot_comments(github, numbers[letter], "round 2 is ready")) == 1, step
            with services.storage.transaction() as session:
                head = session.get(Task, task_id).pair.side(letter).head_sha
            assert len(views.check_runs(github, REPO, head)) == 1, step


def test_a_task_with_models_only_opens_when_the_runner_answers_round_1(github, services, blinding):
    data = small_task(blinding, models=[X, Y])
    del data["outputs"]
    task_id = tasks.submit(services, parse_task(data), "test")
    settle(github, services)
    assert state(services, task_id) == ("awaiting_outputs", [(1, "awaiting_outputs", None)])
    with services.storage.transaction() as session:
        [waiting] = rounds.awaiting_rounds(session, team=None, after_id=None, limit=10)
    assert (waiting.round, waiting.models, waiting.heads) == (1, [X, Y], {X: None, Y: None})
    assert waiting.base_sha == git(github, "rev-parse", "refs/heads/main").strip()
    assert rounds.model_patch(services, task_id, 1, X) == ""
    assert rounds.submit_outputs(services, task_id, 1, answers(), submitted_by="runner") == "accepted"
    settle(github, services)
    assert state(services, task_id) == ("open", [(1, "open", None)])
    assert len(views.pulls(github, REPO)) == 2
    assert rounds.submit_outputs(services, task_id, 1, answers(), submitted_by="runner") == "duplicate"


def test_a_models_patch_rebuilds_its_head_from_the_base(github, services, pair, tmp_path):
    ask_followup(github, services, pair)
    for letter, model in pair["models"].items():
        patch = rounds.model_patch(services, pair["task_id"], 2, model)
        work = tmp_path / letter
        subprocess.run(["git", "clone", "-q", str(github.repo(REPO).git_dir), str(work)], check=True)
        subprocess.run(["git", "-C", str(work), "apply", "-"], input=patch.encode(), check=True)
        tree = subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
        tree = subprocess.run(["git", "-C", str(work), "write-tree"], capture_output=True, text=True).stdout.strip()
        assert tree == git(github, "rev-parse", f"{pair['heads'][letter]}^{{tree}}").strip()


def test_outputs_accepted_as_the_round_expires_are_not_closed_over(github, services, pair, monkeypatch):
    """The expiry sweep reads a round as awaiting; the runner's submission commits before the sweep
    writes. The sweep must see that and leave the accepted round alone."""
    from tandem.domain.rounds import apply

    task_id = pair["task_id"]
    ask_followup(github, services, pair)
    with services.storage.transaction() as session:
        session.scalars(select(Round).where(Round.number == 2)).one().expires_at = utcnow() - timedelta(seconds=1)
    read_then_submitted = apply.expired_rounds

    def racing(session, *args, **kwargs):
        stale = read_then_submitted(session, *args, **kwargs)
        assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "accepted"
        return stale

    monkeypatch.setattr(apply, "expired_rounds", racing)
    assert round_jobs.expire_rounds(services) == []
    monkeypatch.undo()
    settle(github, services)
    assert state(services, task_id) == ("open", [(1, "closed", "superseded"), (2, "open", None)])


def test_a_round_whose_commits_reached_the_prs_is_not_failed_when_github_keeps_failing_afterwards(
    github, services, pair
):
    """The push landed, then GitHub kept refusing the PR bodies until the job's last try. The
    commits are on both PRs, so the round cannot be "failed, the PRs keep round 1": votes from now
    on judge the new heads, and must be recorded in the round whose code they judge."""
    task_id = pair["task_id"]
    ask_followup(github, services, pair)
    github.faults.fail(status=500, times=1000, method="PATCH", path_contains="/issues/")
    assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "accepted"
    settle(github, services)
    github.faults.clear()
    names = branches(services, task_id)
    on_github = {letter: git(github, "rev-parse", f"refs/heads/{branch}").strip() for letter, branch in names.items()}
    assert on_github != pair["heads"]  # round 2's commits are on both PRs
    github.as_user("rater-two").comment(REPO, pair["B"], "/prefer B")
    settle(github, services)
    with services.storage.transaction() as session:
        [(vote, number)] = session.execute(select(Judgment, Round.number).join(Round, Round.id == Judgment.round_id))
        judged = (number, {"A": vote.head_sha_a, "B": vote.head_sha_b})
    # The rater saw round 2's code: the vote is round 2's, on the heads that are on GitHub.
    assert judged == (2, on_github), (state(services, task_id), judged)


def test_a_followup_deleted_while_its_round_is_put_on_the_prs_does_not_let_a_second_round_race_it(
    github, services, pair
):
    """Round 2's answers were accepted and its job is about to push them when the rater deletes
    the /followup. The job still pushes round 2's commits; a /followup written meanwhile must
    not start a round on the heads round 2 is replacing (its answers could never be pushed)."""
    task_id = pair["task_id"]
    first = github.as_user("rater-one").comment(REPO, pair["A"], f"/followup {FOLLOWUP}")
    settle(github, services)
    assert rounds.submit_outputs(services, task_id, 2, answers(), submitted_by="runner") == "accepted"
    github.as_user("rater-one").delete_comment(REPO, first.id)
    github.as_user("rater-two").comment(REPO, pair["B"], "/followup Now add a docstring.")
    github.drain()
    run_jobs(services, (queue.WEBHOOKS,))  # both comments are handled before the apply job runs
    assert state(services, task_id)[1][1][:2] == (2, "applying")
    settle(github, services)
    status, numbered = state(services, task_id)
    assert numbered[:2] == [(1, "closed", "superseded"), (2, "open", None)], (status, numbered)
    if len(numbered) == 3:  # the second follow-up was taken: its round must be answerable
        with services.storage.transaction() as session:
            [waiting] = rounds.awaiting_rounds(session, team=None, after_id=None, limit=10)
        assert waiting.round == 3
        assert rounds.submit_outputs(services, task_id, 3, answers(" 3"), submitted_by="runner") == "accepted"
        settle(github, services)
        with services.storage.transaction() as session:
            reason = session.get(Task, task_id).rounds[-1].failure_reason
        assert state(services, task_id)[1][-1] == (3, "open", None), reason


def test_an_answer_writing_a_file_larger_than_github_takes_is_refused_when_submitted(github, services, pair):
    """GitHub refuses a push with a file over 100 MB. A patch is at most 10 MB, but a binary hunk
    inflates a thousandfold: such an answer must be refused naming the file, not accepted and
    retried at the push until the round fails as "GitHub kept failing"."""
    ask_followup(github, services, pair)
    huge = binary_literal("data/huge.bin", 101 * 2**20)
    assert len(huge) < 2**20
    outputs = [OutputSpec(model=X, patch=huge), OutputSpec(model=Y, files={"src/app.py": "Y = 2\n"})]
    with pytest.raises(InvalidTask, match=r"data/huge\.bin"):
        rounds.submit_outputs(services, pair["task_id"], 2, outputs, submitted_by="runner")
