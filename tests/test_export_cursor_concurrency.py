"""Incremental exports under concurrent writers: runs of `tandem export --cursor`, each taking the
previous run's token, while several writers vote, revote, undo, score, comment on lines, review
and withdraw, in transactions of varying length that commit out of order. Replayed in order, the
runs' objects must be exactly the objects of one full export taken at the end, each as it is then,
and each change row must fall in exactly one run's window.

Each writer's choices are random but seeded (TANDEM_TEST_SEED to try another), among them which
transactions stay open over an export run: the interleavings that matter (a run while a
transaction that has written is still open, and commits after later ones) are forced with a
condition on the exporter's runs, not left to timing. How the threads' other steps interleave is
the scheduler's, so a failure names the seed and shows what was stale, to be reproduced on its own
(as the tests after this one do).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import threading
from datetime import timedelta
from pprint import pformat

import pytest
from sqlalchemy import select

from tandem.domain import changes, judging
from tandem.domain.commands import CommandContext, CommentRef, command_names, find_invocations, run_comment
from tandem.domain.export import export_judgments
from tandem.infra.models import ExportChange, Pair
from tests.support.judging import HEAD_A, T0, deliver, failing_check, minutes, new_pair, open_round

SEED = int(os.environ.get("TANDEM_TEST_SEED", "20261130"))
TASKS = 4
WRITERS = 4
TRANSACTIONS = 30  # per writer
WAIT = 30  # seconds: a forced interleaving that takes longer than this is a hang


def key(record: dict) -> tuple:
    """What identifies an export object: a judgment by id, a rater's scores by round and rater,
    a follow-up round by task and number."""
    if record["kind"] == "judgment":
        return ("judgment", record["id"])
    if record["kind"] == "ratings":
        return ("ratings", record["task_id"], record["round"], record["rater_id"])
    return ("round", record["task_id"], record["round"])


def read(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


class Exporter:
    """Runs of the incremental export one after the other, each as cli/data.py export_command does
    it: the token for the next run taken first, in the export's own transaction."""

    def __init__(self, storage):
        self.storage = storage
        self.lock = threading.Condition()
        self.started = self.finished = 0
        with storage.transaction() as session:
            self.tokens = [changes.token(session)]
        self.replayed: dict[tuple, dict] = {}
        self.delivered = 0

    def run(self) -> None:
        with self.lock:
            self.started += 1
        out = io.StringIO()
        with self.storage.transaction() as session:
            until = changes.token(session)
            export_judgments(session, out, cursor=self.tokens[-1], until=until)
        self.tokens.append(until)
        for record in read(out):
            self.replayed[key(record)] = record
            if record["kind"] == "judgment":
                # As the README says to: a vote carries its rater's scores in its round from now on.
                self.replayed.pop(("ratings", record["task_id"], record["round"], record["rater_id"]), None)
            self.delivered += 1
        with self.lock:
            self.finished += 1
            self.lock.notify_all()

    def wait_for_a_run_from_now(self) -> None:
        """Until a run that starts after this call has finished (its token taken while the
        caller's transaction, which has written, is still open)."""
        with self.lock:
            target = self.started + 1
            assert self.lock.wait_for(lambda: self.finished >= target, timeout=WAIT), "the exporter stopped"


class Writer:
    """One thread of writes, as the comment worker makes them: each comment through the command
    registry (or a deletion through judging.comment_deleted, a line comment through
    judging.record_line_comment), several in one transaction, on tasks in order (each locks its
    task, so two transactions never wait for each other in a cycle)."""

    def __init__(self, number: int, storage, pairs: list[int], exporter: Exporter, ids: itertools.count):
        self.rng = random.Random(f"{SEED}-{number}")
        self.storage, self.pairs, self.exporter, self.ids = storage, pairs, exporter, ids
        # A voter may score before voting (the replay drops their "ratings" object once their vote
        # comes, as the README says); a scorer never votes; a reviewer only reviews.
        self.voter = (2000 + number, f"voter{number}")
        self.scorer = (2100 + number, f"scorer{number}")
        self.reviewer = (2200 + number, f"reviewer{number}")
        self.voted: set[int] = set()  # pairs this writer's voter has a vote on (committed or not)
        self.scores: list[tuple[int, int]] = []  # (pair, comment id) of /rate comments not deleted
        self.line_comments: list[tuple[int, int]] = []
        self.reviews: list[tuple[int, int]] = []
        self.done: dict[str, int] = {}
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            for _ in range(TRANSACTIONS):
                self.transaction()
        except BaseException as error:  # reported by the test, with the seed
            self.error = error

    def transaction(self) -> None:
        steps = sorted(
            (self.rng.choice(self.pairs), self.rng.random()) for _ in range(self.rng.choice((1, 1, 2, 3, 4)))
        )
        hold = self.rng.random() < 0.35  # wait for an export run between two writes, before committing
        hold_at = self.rng.randrange(len(steps))
        pending: list[tuple[str, int, int]] = []
        with self.storage.transaction() as session:
            for index, (pair_id, draw) in enumerate(steps):
                self.step(session, pair_id, draw, pending)
                session.flush()
                if hold and index == hold_at:
                    self.exporter.wait_for_a_run_from_now()
                    self.count("held open over a run")
        for what, pair_id, comment_id in pending:  # committed: they may be deleted from now on
            {"score": self.scores, "line": self.line_comments, "review": self.reviews}[what].append(
                (pair_id, comment_id)
            )

    def step(self, session, pair_id: int, draw: float, pending: list) -> None:
        rng = self.rng
        if draw < 0.3 or (draw < 0.5 and pair_id not in self.voted):
            verdict = rng.choice(("A clearly", "B slightly", "A much", "tie"))
            if self.comment(session, pair_id, self.voter, f"/prefer {verdict}\nbecause {rng.random():.3f}"):
                self.voted.add(pair_id)
        elif draw < 0.4:
            self.comment(session, pair_id, self.voter, "/undo")
        elif draw < 0.5:
            self.score(session, pair_id, self.voter, pending)
        elif draw < 0.6:
            self.score(session, pair_id, self.scorer, pending)
        elif draw < 0.68:
            self.delete(session, pair_id, self.scores, "unscore")
        elif draw < 0.76:
            who = self.scorer if rng.random() < 0.5 or pair_id not in self.voted else self.voter
            comment_id = next(self.ids)
            judging.record_line_comment(
                session,
                session.get(Pair, pair_id),
                rng.choice("AB"),
                comment_id=comment_id,
                url=None,
                delivery_id=f"d-{comment_id}",
                author_id=who[0],
                author_login=who[1],
                path="pager.py",
                body=f"look at this {comment_id}",
                line=rng.randrange(1, 50),
                diff_side="RIGHT",
                commit_sha=HEAD_A,
                created_at=T0 + timedelta(seconds=comment_id),
            )
            pending.append(("line", pair_id, comment_id))
            self.count("line comment")
        elif draw < 0.82:
            comment_id = self.take(pair_id, self.line_comments)
            if comment_id is not None:
                judging.delete_line_comment(session, comment_id)
                self.count("line comment deleted")
        elif draw < 0.94:
            rater = rng.randrange(WRITERS)
            body = f"/approve @voter{rater}" if rng.random() < 0.6 else f"/reject @voter{rater} say more"
            comment_id = self.comment(session, pair_id, self.reviewer, body)
            if comment_id:
                pending.append(("review", pair_id, comment_id))
        else:
            self.delete(session, pair_id, self.reviews, "review withdrawn")

    def score(self, session, pair_id: int, who: tuple[int, str], pending: list) -> None:
        axis = self.rng.choice(("correctness", "security"))
        comment_id = self.comment(
            session, pair_id, who, f"/rate {self.rng.choice('AB')} {axis}={self.rng.randrange(1, 6)}"
        )
        if comment_id:
            pending.append(("score", pair_id, comment_id))

    def delete(self, session, pair_id: int, comments: list[tuple[int, int]], name: str) -> None:
        comment_id = self.take(pair_id, comments)
        if comment_id is not None:
            judging.comment_deleted(session, comment_id)
            self.count(name)

    def take(self, pair_id: int, comments: list[tuple[int, int]]) -> int | None:
        """One of these comments on this pair, taken off the list (a step writes on its own
        pair only: the steps of a transaction lock their tasks in order)."""
        mine = [index for index, (on, _comment) in enumerate(comments) if on == pair_id]
        return comments.pop(self.rng.choice(mine))[1] if mine else None

    def comment(self, session, pair_id: int, who: tuple[int, str], body: str) -> int | None:
        """Process one comment as the worker does; its id if every command in it took effect."""
        comment_id = next(self.ids)
        ref = CommentRef(
            comment_id=comment_id,
            url=None,
            delivery_id=f"delivery-{comment_id}",
            source="comment",
            author_id=who[0],
            author_login=who[1],
            created_at=T0 + timedelta(seconds=comment_id),
            on_side="A",
        )
        ctx = CommandContext.for_pair(session, session.get(Pair, pair_id), ref, started_at=T0)
        role = "reviewer" if who == self.reviewer else "rater"
        outcomes = run_comment(ctx, find_invocations(body, command_names()), roles={role})
        ok = all(outcome.ok for outcome in outcomes)
        self.count(body.split()[0] + ("" if ok else " refused"))
        return comment_id if ok else None

    def count(self, what: str) -> None:
        self.done[what] = self.done.get(what, 0) + 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_consecutive_cursor_runs_under_concurrent_writers_add_up_to_the_full_export(storage):
    exporter = Exporter(storage)
    pairs = [new_pair(storage) for _ in range(TASKS)]
    with storage.transaction() as session:
        for pair_id in pairs:
            judging.ensure_first_round(session, session.get(Pair, pair_id).task)
    ids = itertools.count(1000)
    writers = [Writer(number, storage, pairs, exporter, ids) for number in range(WRITERS)]
    threads = [threading.Thread(target=writer, name=f"writer-{writer.voter[1]}") for writer in writers]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            exporter.run()
    finally:
        for thread in threads:
            thread.join(WAIT)
    for writer in writers:
        if writer.error is not None:
            raise AssertionError(f"seed {SEED}: writer {writer.voter[1]} failed") from writer.error
    exporter.run()  # the last run, once every writer has committed

    out = io.StringIO()
    with storage.transaction() as session:
        export_judgments(session, out)
    full = {key(record): record for record in read(out)}
    done: dict[str, int] = {}
    for writer in writers:
        for what, count in writer.done.items():
            done[what] = done.get(what, 0) + count
    context = f"seed {SEED}, {len(exporter.tokens) - 1} runs, {exporter.delivered} objects delivered, writes {done}"
    # The schedule did what it is for: each kind of write, and runs while transactions were open.
    for what in ("/prefer", "/undo", "/rate", "/approve", "/reject", "line comment", "line comment deleted"):
        assert done.get(what, 0) > 0, f"no {what}: {context}"
    assert done.get("unscore", 0) + done.get("review withdrawn", 0) > 0, context
    assert done.get("held open over a run", 0) > 0, context

    # Each change row is in exactly one run's window.
    with storage.transaction() as session:
        every = set(session.scalars(select(ExportChange.id)))
        seen: dict[int, int] = dict.fromkeys(every, 0)
        for start, end in itertools.pairwise(exporter.tokens):
            window = changes.Window(start=changes.parse_token(session, start), end=changes.parse_token(session, end))
            for change_id in session.scalars(select(ExportChange.id).where(*window.conditions(postgres=True))):
                seen[change_id] += 1
    assert {change_id: n for change_id, n in seen.items() if n != 1} == {}, context

    missing = sorted(set(full) - set(exporter.replayed))
    extra = sorted(set(exporter.replayed) - set(full))
    stale = {
        k: sorted(field for field, value in full[k].items() if exporter.replayed[k].get(field) != value)
        for k in sorted(set(full) & set(exporter.replayed))
        if exporter.replayed[k] != full[k]
    }
    if missing or extra or stale:
        first = next(iter(stale), None)
        example = (
            {field: {"runs": exporter.replayed[first][field], "full": full[first][field]} for field in stale[first]}
            if first
            else None
        )
        raise AssertionError(
            f"{context}\nin the full export, never in a run: {missing}\nin a run, not in the full export: {extra}"
            f"\nstale after the runs (fields): {stale}\nfirst stale object {first}: {pformat(example, width=110)}"
        )


# The defects the test above found, each on its own, in order (both databases).


def full_export(storage) -> dict[tuple, dict]:
    out = io.StringIO()
    with storage.transaction() as session:
        export_judgments(session, out)
    return {key(record): record for record in read(out)}


def test_withdrawing_a_review_of_a_replaced_vote_reaches_the_versions_after_it(storage):
    """A vote's review history holds the steps of the rater's earlier versions (their reviews,
    and "resubmitted" after one that was returned): a review of an earlier version withdrawn
    changes the later versions' objects too, so the next run must give them again."""
    pair_id = new_pair(storage)
    exporter = Exporter(storage)
    deliver(storage, pair_id, "/prefer A clearly", comment_id=1, at=minutes(31))
    deliver(storage, pair_id, "/reject @alice say why", "rev", roles=("reviewer",), comment_id=2, at=minutes(32))
    deliver(storage, pair_id, "/prefer B clearly", comment_id=3, at=minutes(33))
    exporter.run()
    later = max(k for k in exporter.replayed if k[0] == "judgment")
    assert [s["step"] for s in exporter.replayed[later]["review_history"]] == ["submitted", "returned", "resubmitted"]
    with storage.transaction() as session:
        judging.comment_deleted(session, 2)
    exporter.run()
    full = full_export(storage)
    assert [s["step"] for s in full[later]["review_history"]] == ["submitted", "submitted"]
    assert exporter.replayed[later]["review_history"] == full[later]["review_history"]
    assert exporter.replayed == full


def test_a_scorer_who_votes_later_has_no_ratings_object_left_after_the_runs(storage):
    """A rater's scores in a round they have not voted in are an object of kind "ratings"; once
    they vote, their scores travel with the vote and the full export has no such object. Runs
    replayed as the README says (a vote's object replaces its rater's "ratings" object in its
    round) hold none either, and the vote carries the scores."""
    pair_id = new_pair(storage)
    exporter = Exporter(storage)
    deliver(storage, pair_id, "/rate A correctness=4", "carol", comment_id=1, at=minutes(31))
    exporter.run()
    assert [k[0] for k in exporter.replayed] == ["ratings"]
    deliver(storage, pair_id, "/prefer A clearly", "carol", comment_id=2, at=minutes(32))
    exporter.run()
    full = full_export(storage)
    assert [k[0] for k in full] == ["judgment"]
    assert exporter.replayed == full
    assert next(iter(full.values()))["ratings"] == {"A": {"correctness": 4}}


def test_a_ci_report_reaches_every_object_of_its_rounds(storage):
    """Every object of a round carries the round's CI (``round_ci``): a replaced vote's and the
    scores of a rater who did not vote as much as the current votes."""
    pair_id = new_pair(storage)
    open_round(storage, pair_id, 1)
    exporter = Exporter(storage)
    deliver(storage, pair_id, "/prefer A clearly", comment_id=1, at=minutes(31))
    deliver(storage, pair_id, "/prefer B clearly", comment_id=2, at=minutes(32))
    deliver(storage, pair_id, "/rate A correctness=4", "carol", comment_id=3, at=minutes(33))
    exporter.run()
    failing_check(storage, pair_id)
    exporter.run()
    full = full_export(storage)
    assert {k: v["round_ci"]["A"]["state"] for k, v in full.items()} == dict.fromkeys(full, "failure")
    assert {k: v["round_ci"] for k, v in exporter.replayed.items()} == {k: v["round_ci"] for k, v in full.items()}
    assert exporter.replayed == full


def test_a_leak_found_in_a_later_round_reaches_the_objects_of_the_earlier_ones(github, services, pair):
    """Every object of a task says whether it is blind: a leak the scan finds in a follow-up
    round's outputs (recorded, ``on_leak: flag``) makes every object of the task not blind, the
    earlier rounds' votes too, and the next run must give them again (training leaves them out)."""
    from tandem.domain import rounds
    from tandem.domain.task_spec import OutputSpec
    from tandem.infra.models import Task
    from tests.support.rounds import REPO, X, Y, ask_followup

    task_id = pair["task_id"]
    exporter = Exporter(services.storage)
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    ask_followup(github, services, pair)
    exporter.run()
    [vote] = [k for k in exporter.replayed if k[0] == "judgment"]
    assert exporter.replayed[vote]["blind"] is True
    with services.storage.transaction() as session:
        session.get(Task, task_id).leak_settings = {"on_leak": "flag"}
    leaky = [
        OutputSpec(model=Y, files={"src/app.py": "Y = 2\n"}),
        OutputSpec(model=X, files={"src/app.py": f"X = 1  # {Y} would do it differently\n"}),
    ]
    # Not settled: the model name would go to GitHub, which the blinding audit of every test forbids.
    assert rounds.submit_outputs(services, task_id, 2, leaky, submitted_by="runner") == "accepted"
    exporter.run()
    full = full_export(services.storage)
    assert full[vote]["blind"] is False
    assert exporter.replayed[vote]["blind"] == full[vote]["blind"]
