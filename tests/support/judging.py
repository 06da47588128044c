"""Judging as a worker does it, for tests: pairs in the database, comments processed one per
transaction through the real command finder and registry, and what they recorded."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from tandem.domain import ci, judging, rounds
from tandem.domain.commands import (
    CommandContext,
    CommentRef,
    Outcome,
    Rubric,
    command_names,
    find_invocations,
    run_comment,
)
from tandem.infra.models import Judgment, Output, Pair, Side, Task

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
USERS = {"alice": 101, "bob": 102, "carol": 103, "dave": 104, "eve": 105, "rev": 901, "rev2": 902}
HEAD_A, HEAD_B = "a" * 40, "b" * 40
_comment_ids = itertools.count(5000)


def new_comment_id() -> int:
    """An id no other comment of the test run has."""
    return next(_comment_ids)


def make_pair(
    session,
    *,
    repo: str = "evals/mirror-1",
    models: tuple[str, str] = ("model-x", "model-y"),
    a_is_first: bool = True,
    prompt: str = "Fix the off-by-one in the pager",
    metadata: dict | None = None,
) -> Pair:
    """A task with two outputs and an open pair; side A holds models[0] if a_is_first."""
    task = Task(
        repo_full_name=repo,
        base="main",
        base_sha="c" * 40,
        prompt=prompt,
        metadata_=metadata if metadata is not None else {"batch": "b1"},
        status="open",
    )
    session.add(task)
    session.flush()
    outputs = [Output(task_id=task.id, position=i, model=model, patch="diff") for i, model in enumerate(models)]
    session.add_all(outputs)
    session.flush()
    pair = Pair(task_id=task.id, a_is_first_output=a_is_first, opened_at=T0)
    session.add(pair)
    session.flush()
    on_a, on_b = outputs if a_is_first else outputs[::-1]
    session.add_all(
        [
            Side(
                pair_id=pair.id,
                letter="A",
                output_id=on_a.id,
                repo_full_name=repo,
                branch=f"t{task.id}-a",
                head_sha=HEAD_A,
                pr_number=2 * task.id,
            ),
            Side(
                pair_id=pair.id,
                letter="B",
                output_id=on_b.id,
                repo_full_name=repo,
                branch=f"t{task.id}-b",
                head_sha=HEAD_B,
                pr_number=2 * task.id + 1,
            ),
        ]
    )
    session.flush()
    return pair


def new_pair(storage, **kwargs) -> int:
    with storage.transaction() as session:
        return make_pair(session, **kwargs).id


def comment_ref(
    who: str = "alice",
    *,
    comment_id: int | None = None,
    side: str = "A",
    at: datetime | None = None,
    edited_at: datetime | None = None,
    source: str = "comment",
) -> CommentRef:
    comment_id = comment_id if comment_id is not None else new_comment_id()
    return CommentRef(
        comment_id=comment_id,
        url=f"https://github.com/evals/mirror-1/pull/1#issuecomment-{comment_id}",
        delivery_id=f"delivery-{comment_id}-{edited_at.timestamp() if edited_at else 0}",
        source=source,
        author_id=USERS[who],
        author_login=who,
        created_at=at or T0 + timedelta(minutes=30),
        on_side=side,
        edited_at=edited_at,
    )


def deliver(
    storage, pair_id: int, body: str, who: str = "alice", *, roles=("rater",), rubric: Rubric | None = None, **ref
) -> list[Outcome]:
    """Process one comment (or, with edited_at=..., its edit) in its own transaction."""
    with storage.transaction() as session:
        pair = session.get(Pair, pair_id)
        ctx = CommandContext.for_pair(session, pair, comment_ref(who, **ref), rubric=rubric, started_at=T0)
        return run_comment(
            ctx, find_invocations(body, command_names()), roles=set(roles), edited=ref.get("edited_at") is not None
        )


def open_round(storage, pair_id: int, number: int, *, at: datetime = T0) -> None:
    """The round's outputs are on the PRs (as the apply job leaves it), since `at`."""
    with storage.transaction() as session:
        task = session.get(Pair, pair_id).task
        judging.ensure_first_round(session, task)
        round_ = next(r for r in task.rounds if r.number == number)
        rounds.lifecycle.open_round(session, round_)
        round_.opened_at = at


def failing_check(storage, pair_id: int) -> None:
    """A check run failing on side A's head (HEAD_A) of the pair's repository, as a CI webhook records it."""
    with storage.transaction() as session:
        ci.record(
            session,
            session.get_one(Pair, pair_id).task.repo_full_name,
            HEAD_A,
            kind="check_run",
            source="app:7",
            name="tests",
            order=(1, 2),
            state=ci.CiState.FAILURE,
            url=None,
            reported_at=T0,
            delivery_id="ci-1",
        )


def judgments(storage, pair_id: int) -> list[Judgment]:
    with storage.transaction() as session:
        return list(session.scalars(select(Judgment).where(Judgment.pair_id == pair_id).order_by(Judgment.id)))


def current(storage, pair_id: int) -> list[tuple[str, str, str | None]]:
    return [(j.rater_login, j.verdict, j.strength) for j in judgments(storage, pair_id) if j.superseded_at is None]


def history(storage, pair_id: int) -> list[tuple]:
    return [(j.rater_login, j.verdict, j.superseded_reason, j.superseded_by_id) for j in judgments(storage, pair_id)]


def errors(outcomes: list[Outcome]) -> list[str]:
    return [o.message for o in outcomes if not o.ok]


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def many_votes(session, pair: Pair, count: int, rationale: Callable[[int], str]) -> int:
    """``count`` pending votes on the pair's current round, by raters 0 to count - 1, inserted at
    once (delivering each would take minutes); returns the round's id."""
    round_id = judging.current_round(session, pair.task).id
    session.execute(
        insert(Judgment),
        [
            dict(
                task_id=pair.task_id,
                pair_id=pair.id,
                round_id=round_id,
                rater_id=i,
                rater_login=f"r{i}",
                verdict="AB"[i % 2],
                strength="clearly",
                rationale=rationale(i),
                source="comment",
                comment_id=i,
                on_side="A",
                delivery_id=f"d{i}",
                voted_at=T0,
                review_state="pending",
            )
            for i in range(count)
        ],
    )
    return round_id


def team_task(storage, team: str, votes: int, rationale: str) -> int:
    """A task of ``team`` with ``votes`` pending votes, each with this rationale; returns its id."""
    with storage.transaction() as session:
        pair = make_pair(session)
        pair.task.team = team
        many_votes(session, pair, votes, lambda _: rationale)
        return pair.task_id
