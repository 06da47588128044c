"""Raters and reviewers on github.com, end to end: emulator -> webhook -> queue -> worker -> database,
and Tandem's answers back on GitHub."""

from __future__ import annotations

import io
import json

from sqlalchemy import select

from tandem.domain import export, rounds
from tandem.infra.models import Judgment, JudgmentReview, LineComment, Pair, Rating, Round, Task
from tests import github_views as views
from tests.conftest import settle

REPO = "evals-org/mlflow"


def snapshot(services) -> dict:
    """Every recorded row, for comparing the database before and after a replay."""
    with services.storage.transaction() as session:
        return {
            model.__tablename__: sorted(
                tuple(
                    str(getattr(row, column.key)) for column in model.__table__.columns if column.key != "recorded_at"
                )
                for row in session.scalars(select(model))
            )
            for model in (Judgment, Rating, Round, JudgmentReview, LineComment, Pair)
        }


def current_votes(services) -> dict[str, tuple[str, str | None]]:
    with services.storage.transaction() as session:
        rows = session.scalars(select(Judgment).where(Judgment.superseded_at.is_(None)))
        return {j.rater_login: (j.verdict, j.strength) for j in rows}


def test_two_raters_vote_edit_undo_and_a_reviewer_approves(github, services, pair):
    a, b = pair["A"], pair["B"]
    one, two = github.as_user("rater-one"), github.as_user("rater-two")

    first = one.comment(REPO, a, "/prefer A\nCleaner fix, and it has a test.")
    two.submit_review(REPO, b, body="/prefer B slightly\nKeeps the old behaviour.", event="COMMENT")
    one.review_comment(REPO, a, path="src/app.py", line=1, body="This constant is never used.", side="RIGHT")
    settle(github, services)
    assert current_votes(services) == {"rater-one": ("A", "clearly"), "rater-two": ("B", "slightly")}
    assert ("tandem[bot]", "+1") in views.comments(github, REPO, a)[0]["reactions"]

    one.edit_comment(REPO, first.id, "/prefer A much\nMuch cleaner, on reflection.")
    two.comment(REPO, b, "/undo")
    settle(github, services)
    two.comment(REPO, a, "/prefer tie\nBoth fix it.")
    settle(github, services)
    assert current_votes(services) == {"rater-one": ("A", "much"), "rater-two": ("tie", None)}

    pulls = {p["number"]: p for p in views.pulls(github, REPO, state="all")}
    assert set(pulls[a]["labels"]) == {"tandem", "tandem:judged"}
    [check] = views.check_runs(github, REPO, pulls[a]["head_sha"])
    assert check["output"]["title"] == "2 of 2 judgments"

    reviewer = github.as_user("reviewer-one")
    reviewer.comment(REPO, b, "/approve @rater-one\nGood rationale.")
    reviewer.comment(REPO, b, "/approve @rater-two")
    settle(github, services)

    pulls = {p["number"]: p for p in views.pulls(github, REPO, state="all")}
    for number in (a, b):
        assert pulls[number]["state"] == "closed"
        assert set(pulls[number]["labels"]) == {"tandem", "tandem:approved"}
        [check] = views.check_runs(github, REPO, pulls[number]["head_sha"])
        assert (check["status"], check["conclusion"], check["output"]["title"]) == ("completed", "success", "Approved")
        summary = [c for c in views.comments(github, REPO, number) if "judging of task" in c["body"]]
        assert len(summary) == 1 and summary[0]["user"] == "tandem[bot]"
    with services.storage.transaction() as session:
        assert session.get(Task, pair["task_id"]).status == "closed"

    out = io.StringIO()
    with services.storage.transaction() as session:
        export.export_judgments(session, out, since=None, repo=REPO)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    final = {(r["rater_login"], r["verdict"], r["strength"]) for r in rows if r["current"]}
    assert final == {("rater-one", "A", "much"), ("rater-two", "tie", None)}
    history = {(r["rater_login"], r["verdict"], r["superseded_reason"]) for r in rows if not r["current"]}
    assert history == {("rater-one", "A", "edited"), ("rater-two", "B", "undo")}
    assert all(r["model_a"] == pair["models"]["A"] and r["model_b"] == pair["models"]["B"] for r in rows)
    assert all(r["review_state"] == "approved" for r in rows if r["current"])
    with services.storage.transaction() as session:
        [critique] = session.scalars(select(LineComment)).all()
        assert (critique.side, critique.path, critique.line) == ("A", "src/app.py", 1)

    # GitHub redelivers every webhook of the scenario: nothing changes.
    before = snapshot(services)
    replayed = [d for d in github.deliveries if not d.redelivery]
    for delivery in replayed:
        github.deliver(delivery.event, delivery.body, delivery_id=delivery.guid)
    settle(github, services)
    assert snapshot(services) == before
    assert len(replayed) > 10


def test_unauthorized_users_bots_and_tandem_itself_never_create_a_judgment(github, services, pair):
    github.create_user("helper-bot[bot]", type="Bot")
    github.add_org_member("evals-org", "helper-bot[bot]")
    outsider = github.as_user("outsider").comment(REPO, pair["A"], "/prefer A\nI like it.")
    github.as_user("helper-bot[bot]").comment(REPO, pair["A"], "/prefer B")
    # Tandem's own comment, posted through the API with its installation token.
    client = services.github.as_installation(github.installation.id)
    client.rest.issues.create_comment("evals-org", "mlflow", pair["B"], body="/prefer B\n/approve")
    settle(github, services)

    with services.storage.transaction() as session:
        assert session.scalars(select(Judgment)).all() == []
    replies = [c for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert len(replies) == 1, "one polite reply to the outsider, none to the bots"
    assert "@outsider" in replies[0]["body"] and "only raters can use `/prefer`" in replies[0]["body"]
    outsider_comment = next(c for c in views.comments(github, REPO, pair["A"]) if c["id"] == outsider.id)
    assert ("tandem[bot]", "confused") in outsider_comment["reactions"]


def test_a_team_member_is_a_rater_through_githubs_team_api(github, services, pair):
    github.as_user("rater-three").comment(REPO, pair["B"], "/prefer B")
    settle(github, services)
    assert current_votes(services) == {"rater-three": ("B", "clearly")}
    assert any("/teams/raters/memberships/rater-three" in r.path for r in github.requests)


def test_a_bad_command_gets_confused_and_the_exact_error(github, services, pair):
    comment = github.as_user("rater-one").comment(REPO, pair["A"], "/rate A speed=4")
    settle(github, services)
    [reply] = [c for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert "unknown axis `speed`" in reply["body"] and "/help" in reply["body"]
    mine = next(c for c in views.comments(github, REPO, pair["A"]) if c["id"] == comment.id)
    assert ("tandem[bot]", "confused") in mine["reactions"]


def test_a_followup_prompt_starts_a_round_awaiting_the_models_answers(github, services, pair):
    github.as_user("rater-one").comment(REPO, pair["A"], "/followup\nNow add a regression test.")
    settle(github, services)
    with services.storage.transaction() as session:
        [waiting] = rounds.awaiting_rounds(session, team=None, after_id=None, limit=10)
        assert session.get(Task, pair["task_id"]).status == "awaiting_outputs"
    assert (waiting.task_id, waiting.round) == (pair["task_id"], 2)
    assert [(turn.round, turn.prompt, turn.author) for turn in waiting.conversation][1:] == [
        (2, "Now add a regression test.", "rater-one")
    ]
    # Keyed by model, never by letter: each model's head is its own side's.
    heads = {pair["models"][letter]: sha for letter, sha in pair["heads"].items()}
    assert waiting.heads == heads and sorted(waiting.models) == sorted(heads)


def test_deleting_a_vote_retracts_it(github, services, pair):
    comment = github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    github.as_user("rater-one").delete_comment(REPO, comment.id)
    settle(github, services)
    assert current_votes(services) == {}
    with services.storage.transaction() as session:
        [vote] = session.scalars(select(Judgment)).all()
        assert vote.superseded_reason == "deleted"


def test_a_vote_records_the_head_commits_it_was_cast_on_even_after_a_push(github, services, pair):
    with services.storage.transaction() as session:
        branch = session.get(Task, pair["task_id"]).pair.side("B").branch
    pushed = github.as_user("rater-one").push(REPO, {"src/extra.py": "EXTRA = 1\n"}, branch=branch)
    github.as_user("rater-two").comment(REPO, pair["A"], "/prefer B")
    settle(github, services)
    with services.storage.transaction() as session:
        [vote] = session.scalars(select(Judgment)).all()
        task = session.get(Task, pair["task_id"])
        assert (vote.head_sha_a, vote.head_sha_b) == (task.pair.side("A").head_sha, pushed)


def test_an_edit_by_someone_else_never_changes_a_vote(github, services, pair):
    comment = github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    # On github.com a maintainer (or another app) may edit anyone's comment; the emulator's users
    # may not, so this is the webhook GitHub sends then: the author's comment, another sender.
    [created] = [
        d for d in github.deliveries if d.event == "issue_comment" and d.payload["comment"]["id"] == comment.id
    ]
    edited = json.loads(created.body)
    edited["action"] = "edited"
    edited["changes"] = {"body": {"from": edited["comment"]["body"]}}
    edited["comment"]["body"] = "/prefer B"
    edited["sender"] = edited["sender"] | {"login": "reviewer-one", "id": edited["sender"]["id"] + 1}
    github.deliver("issue_comment", edited)
    settle(github, services)
    assert current_votes(services) == {"rater-one": ("A", "clearly")}


def test_an_outsider_is_told_why_once_not_on_every_comment(github, services, pair):
    for body in ("/prefer A", "/prefer B", "/rate A correctness=5"):
        github.as_user("outsider").comment(REPO, pair["A"], body)
        settle(github, services)
    replies = [c for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert len(replies) == 1
    confused = [c for c in views.comments(github, REPO, pair["A"]) if ("tandem[bot]", "confused") in c["reactions"]]
    assert len(confused) == 3


def test_follow_up_jobs_left_behind_by_a_crash_are_queued_by_the_sweep(github, services, pair, monkeypatch):
    from datetime import timedelta

    from tandem.infra import outbox
    from tandem.infra.models import OutboxEntry

    def crash(current, entries):
        raise ConnectionError("the worker died right after the commit")

    monkeypatch.setattr(outbox, "dispatch_entries", crash)
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    github.drain()
    from tests.conftest import run_jobs

    run_jobs(services)
    monkeypatch.undo()
    assert current_votes(services) == {"rater-one": ("A", "clearly")}, "the vote is committed"
    with services.storage.transaction() as session:
        assert session.query(OutboxEntry).count() == 2  # the answer on GitHub and the pair's sync
    assert outbox.sweep(services, timedelta(0)) == 2
    settle(github, services)
    [vote] = [c for c in views.comments(github, REPO, pair["A"]) if c["user"] == "rater-one"]
    assert ("tandem[bot]", "+1") in vote["reactions"]
    assert "tandem:judged" in {p["number"]: p for p in views.pulls(github, REPO)}[pair["A"]]["labels"]
    with services.storage.transaction() as session:
        assert session.query(OutboxEntry).count() == 0


def test_votes_waiting_together_are_answered_by_one_job_each_with_its_own_answer(github, services, pair):
    """Every vote's answer was a job of its own, and RQ's work for a job cost more than the answer.
    Answers that wait while a worker takes the deliveries (it serves them first) join one job."""
    from tandem.infra import job_names, queue
    from tandem.infra.models import OutboxEntry
    from tests.conftest import relay, run_jobs

    good = github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    typo = github.as_user("rater-two").comment(REPO, pair["A"], "/prefre B")
    github.drain()
    relay(services)
    run_jobs(services, queues=[queue.WEBHOOKS])
    answering = [job.func_name for job in services.queue(queue.PAIRS).get_jobs()]
    assert answering.count(job_names.ACKNOWLEDGE_WAITING) == 1
    assert job_names.ACKNOWLEDGE not in answering

    settle(github, services)
    reactions = {c["id"]: c["reactions"] for c in views.comments(github, REPO, pair["A"])}
    assert reactions[good.id] == [("tandem[bot]", "+1")]
    assert reactions[typo.id] == [("tandem[bot]", "confused")]
    replies = [c["body"] for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert len(replies) == 1 and replies[0].startswith("@rater-two")
    with services.storage.transaction() as session:
        assert session.query(OutboxEntry).count() == 0


def test_two_answering_jobs_at_once_give_each_answer_once(github, services, pair):
    """A job answering an installation's waiting commands holds a lease: a second one, started
    while the first is answering (a retry, a sweep), waits and then finds nothing left."""
    import threading

    from tandem.infra import queue
    from tests.conftest import relay, run_jobs
    from workers import responses

    typos = [github.as_user(login).comment(REPO, pair["A"], "/prefre B") for login in ("rater-one", "rater-two")]
    github.drain()
    relay(services)
    run_jobs(services, queues=[queue.WEBHOOKS])
    github.faults.latency(0.2)  # each answer takes long enough for the two jobs to overlap
    results: list[str] = []
    jobs = [
        threading.Thread(
            target=lambda: results.append(responses.acknowledge_waiting(installation_id=github.installation.id))
        )
        for _ in range(2)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    github.faults.latency(0)

    assert sorted(results) == ["0 answered", "2 answered"]
    replies = [c["body"] for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert sorted(reply.split()[0] for reply in replies) == ["@rater-one", "@rater-two"]
    reactions = {c["id"]: c["reactions"] for c in views.comments(github, REPO, pair["A"])}
    assert [reactions[typo.id] for typo in typos] == [[("tandem[bot]", "confused")]] * 2


def test_a_review_vote_is_acknowledged_and_a_typo_answered(github, services, pair):
    """A vote in a review body used to be recorded without a word (reviews take no reactions),
    and a mistyped or listed command got neither a reaction nor a reply."""
    github.as_user("rater-two").submit_review(REPO, pair["B"], body="/prefer B slightly\nKeeps it.", event="COMMENT")
    typo = github.as_user("rater-one").comment(REPO, pair["A"], "/prefre A\n- /rate A correctness=4")
    settle(github, services)
    replies = [c["body"] for c in views.comments(github, REPO, pair["B"]) if c["user"] == "tandem[bot]"]
    assert replies == ["@rater-two\n\nRecorded @rater-two's vote in round 1: **B** (slightly)."]
    [reply] = [c["body"] for c in views.comments(github, REPO, pair["A"]) if c["user"] == "tandem[bot]"]
    assert "`/prefre A`: there is no such command; did you mean `/prefer`?" in reply
    assert "`/rate A correctness=4`: a command in a list item is not read" in reply
    typo_comment = next(c for c in views.comments(github, REPO, pair["A"]) if c["id"] == typo.id)
    assert ("tandem[bot]", "confused") in typo_comment["reactions"]
    assert current_votes(services) == {"rater-two": ("B", "slightly")}
