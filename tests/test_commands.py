"""The command grammar, its exact error messages, the registry and the generated /help.

Grammar errors are raised before anything is read or written, so most of these tests run on a
context with no database; the last ones run whole comments on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tandem.domain.commands import (
    COMMANDS,
    Command,
    CommandContext,
    CommandError,
    CommentRef,
    Invocation,
    Outcome,
    Rubric,
    command_names,
    help_text,
    run,
)
from tandem.domain.commands.prefer import parse_prefer
from tandem.domain.commands.rate import parse_rate
from tandem.domain.commands.registry import words
from tandem.domain.commands.review import parse_review
from tandem.domain.judging import Vote
from tandem.domain.repo_config import RepoConfig
from tandem.infra.models import Judgment, Pair, Rating
from tests.support.judging import deliver, errors, new_pair

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
REPO_RUBRIC = Rubric(("correctness", "security", "reliability", "maintainability"), (1, 5))


def invocation(line: str, text: str = "") -> Invocation:
    name, _, args = line.removeprefix("/").partition(" ")
    return Invocation(name=name.lower(), args=args.strip(), text=text, line=1)


def offline_context(rubric: Rubric = REPO_RUBRIC, *, closed: bool = False) -> CommandContext:
    """A context whose commands fail before they touch the (absent) database."""
    comment = CommentRef(1, None, "d-1", "comment", 101, "alice", T0, "A")
    return CommandContext(
        session=None,  # type: ignore[arg-type]
        pair=Pair(id=1, task_id=1, closed_at=T0 if closed else None),
        comment=comment,
        rubric=rubric,
    )


def error_of(line: str, text: str = "", *, rubric: Rubric = REPO_RUBRIC, roles=None, closed=False) -> str:
    with pytest.raises(CommandError) as raised:
        run(offline_context(rubric, closed=closed), invocation(line, text), roles=roles)
    return str(raised.value)


# /prefer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "vote"),
    [
        ("/prefer A", ("A", "clearly")),
        ("/prefer a", ("A", "clearly")),
        ("/prefer B", ("B", "clearly")),
        ("/prefer A.", ("A", "clearly")),
        ("/prefer b!", ("B", "clearly")),
        ("/prefer A slightly", ("A", "slightly")),
        ("/prefer B much", ("B", "much")),
        ("/prefer B  MUCH.", ("B", "much")),
        ("/prefer A, clearly;", ("A", "clearly")),
        ("/prefer tie", ("tie", None)),
        ("/prefer Tie.", ("tie", None)),
        ("/prefer neither", ("neither", None)),
        ("/prefer NEITHER:", ("neither", None)),
    ],
)
def test_prefer_grammar(line, vote):
    parsed = parse_prefer(invocation(line, "because\nreasons"))
    assert (parsed.verdict, parsed.strength, parsed.rationale) == (*vote, "because\nreasons")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "/prefer",
            "`/prefer`: say which side is better: `/prefer A`, `/prefer B`, `/prefer tie` or `/prefer neither`",
        ),
        ("/prefer C", "`/prefer C`: the side must be A, B, tie or neither"),
        ("/prefer much A", "`/prefer much A`: the side must be A, B, tie or neither"),
        ("/prefer Option A", "`/prefer Option A`: the side must be A, B, tie or neither"),
        (
            "/prefer A very",
            "`/prefer A very`: the strength must be slightly, clearly or much; put your reasons on the lines below",
        ),
        (
            "/prefer A because it is shorter",
            "`/prefer A because it is shorter`: the strength must be slightly, clearly or much; "
            "put your reasons on the lines below",
        ),
        (
            "/prefer A much more",
            "`/prefer A much more`: write the side and the strength only, e.g. `/prefer A much`; "
            "put your reasons on the lines below",
        ),
        ("/prefer tie much", "`/prefer tie much`: `/prefer tie` takes no strength"),
        ("/prefer neither slightly", "`/prefer neither slightly`: `/prefer neither` takes no strength"),
        (
            "/prefer tie both fine",
            "`/prefer tie both fine`: write `/prefer tie` alone on its line; put your reasons on the lines below",
        ),
    ],
)
def test_prefer_errors(line, message):
    assert error_of(line) == message


# /rate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "side", "scores"),
    [
        ("/rate A correctness=4 security=5", "A", {"correctness": 4, "security": 5}),
        ("/rate b Correctness=1", "B", {"correctness": 1}),
        ("/rate A: correctness = 3, security=2.", "A", {"correctness": 3, "security": 2}),
        ("/rate B reliability=5 maintainability=+1", "B", {"reliability": 5, "maintainability": 1}),
    ],
)
def test_rate_grammar(line, side, scores):
    assert parse_rate(invocation(line), REPO_RUBRIC) == (side, scores)


AXES = "correctness, security, reliability, maintainability"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/rate", "`/rate`: say which side and its scores, e.g. `/rate A correctness=4 security=5`"),
        ("/rate C correctness=4", "`/rate C correctness=4`: the side must be A or B"),
        ("/rate correctness=4", "`/rate correctness=4`: the side must be A or B"),
        (
            "/rate A",
            f"`/rate A`: give at least one score, e.g. `/rate A correctness=4 security=5`; "
            f"this repository's axes are {AXES}",
        ),
        ("/rate A speed=4", f"`/rate A speed=4`: unknown axis `speed`; this repository's axes are {AXES}"),
        ("/rate A Speed=4", f"`/rate A Speed=4`: unknown axis `Speed`; this repository's axes are {AXES}"),
        ("/rate A correctness=9", "`/rate A correctness=9`: correctness must be an integer from 1 to 5"),
        ("/rate A correctness=0", "`/rate A correctness=0`: correctness must be an integer from 1 to 5"),
        ("/rate A correctness=4.5", "`/rate A correctness=4.5`: correctness must be an integer from 1 to 5"),
        ("/rate A correctness=four", "`/rate A correctness=four`: correctness must be an integer from 1 to 5"),
        ("/rate A correctness=", "`/rate A correctness=`: correctness must be an integer from 1 to 5"),
        ("/rate A correctness=\uff14", "`/rate A correctness=\uff14`: correctness must be an integer from 1 to 5"),
        (
            "/rate A correctness 4",
            "`/rate A correctness 4`: `correctness` is not a score; write axis=score, e.g. `correctness=4`",
        ),
        ("/rate A 4", "`/rate A 4`: `4` is not a score; write axis=score, e.g. `correctness=4`"),
        ("/rate A correctness=4 =5", "`/rate A correctness=4 =5`: correctness must be an integer from 1 to 5"),
        ("/rate A security=4 Security=5", "`/rate A security=4 Security=5`: security is scored twice"),
    ],
)
def test_rate_errors(line, message):
    assert error_of(line) == message


def test_rate_follows_the_repositorys_rubric():
    rubric = Rubric(("style", "tests"), (0, 3))
    assert parse_rate(invocation("/rate A style=0 tests=3"), rubric) == ("A", {"style": 0, "tests": 3})
    assert error_of("/rate A correctness=3", rubric=rubric) == (
        "`/rate A correctness=3`: unknown axis `correctness`; this repository's axes are style, tests"
    )
    assert error_of("/rate B tests=4", rubric=rubric) == "`/rate B tests=4`: tests must be an integer from 0 to 3"
    assert error_of("/rate B", rubric=rubric) == (
        "`/rate B`: give at least one score, e.g. `/rate B style=2 tests=3`; this repository's axes are style, tests"
    )


# /followup, /undo, /approve, /reject ------------------------------------------------------


def test_followup_undo_and_review_grammar_errors():
    assert error_of("/followup") == (
        "`/followup`: write the follow-up prompt after `/followup`, on the same line or on the lines below"
    )
    assert error_of("/undo that") == "`/undo that`: `/undo` takes nothing after it; it retracts your vote in this round"
    assert error_of("/reject") == "`/reject`: say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater"
    assert error_of("/reject @bob") == (
        "`/reject @bob`: say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater"
    )
    assert error_of("/approve @-bob") == "`/approve @-bob`: `@-bob` is not a GitHub login"
    long = "x" * 100
    assert error_of(f"/reject @{long} why") == f"`/reject @{long[:58]}…`: `@{long}` is not a GitHub login"


@pytest.mark.parametrize(
    ("line", "text", "parsed"),
    [
        ("/approve", "", (None, "")),
        ("/approve @bob.", "", ("bob", "")),
        ("/approve @bob looks right", "", ("bob", "looks right")),
        ("/reject no tests were run", "", (None, "no tests were run")),
        ("/reject @Bob-2 wrong side", "The diff shows\nB fails.", ("Bob-2", "wrong side\nThe diff shows\nB fails.")),
        ("/reject", "only text below", (None, "only text below")),
        ("/approve @dependabot[bot]", "", ("dependabot[bot]", "")),
    ],
)
def test_review_grammar(line, text, parsed):
    assert parse_review(invocation(line, text)) == parsed


def test_words_strip_trailing_punctuation():
    assert words("  A,  much.!  ; ") == ["A", "much"]


# Roles and closed tasks -------------------------------------------------------------------


def test_roles_are_checked():
    assert error_of("/approve", roles={"rater"}) == "`/approve`: only reviewers can use `/approve`"
    assert error_of("/prefer A", roles={"reviewer"}) == "`/prefer A`: only raters can use `/prefer`"
    assert error_of("/prefer A", roles=set(), closed=True) == "`/prefer A`: only raters can use `/prefer`"
    assert error_of("/prefer A", closed=True) == "`/prefer A`: this task is closed and takes no more votes"
    assert error_of("/approve @bob", roles={"reviewer"}, closed=True) == (
        "`/approve @bob`: this task is closed; its votes can no longer be reviewed"
    )
    assert error_of("/reject @bob wrong side", closed=True) == (
        "`/reject @bob wrong side`: this task is closed; its votes can no longer be reviewed"
    )
    # /help is for anyone, even on a closed task.
    assert run(offline_context(closed=True), invocation("/help"), roles=set()).reply


# Registry and /help -----------------------------------------------------------------------


def test_every_command_is_registered_with_its_role():
    assert command_names() == ["prefer", "rate", "followup", "undo", "approve", "reject", "help"]
    roles = {name: entry.role for name, entry in COMMANDS.items()}
    assert roles == {
        "prefer": "rater",
        "rate": "rater",
        "followup": "rater",
        "undo": "rater",
        "approve": "reviewer",
        "reject": "reviewer",
        "help": "anyone",
    }


def test_help_is_generated_from_the_registry():
    text = help_text(Rubric(("style", "tests"), (0, 3)))
    for name in command_names():
        assert f"`/{name}" in text
    assert "`/rate A style=2 tests=3`" in text
    assert "axes: style, tests; each score is an integer from 0 to 3" in text
    assert "| `/prefer A` · `/prefer B` · `/prefer tie` · `/prefer neither` | raters |" in text
    assert "| `/approve` · `/approve @rater` | reviewers |" in text
    assert "| `/help` | anyone | This list. |" in text
    assert "correctness" not in text
    assert "correctness, security, reliability, maintainability" in help_text()
    # Every row is one table row: no stray pipes or newlines in usages or summaries.
    rows = [line for line in text.splitlines() if line.startswith("| `/")]
    assert len(rows) == len(COMMANDS) and all(row.count(" | ") == 2 for row in rows)


def test_a_new_command_shows_up_in_help(monkeypatch):
    def handle(ctx, invocation):
        return Outcome("skipped")

    monkeypatch.setitem(COMMANDS, "skip", Command("skip", "rater", ("/skip",), "Skip this task.", handle))
    assert "| `/skip` | raters | Skip this task. |" in help_text()
    assert run(offline_context(), invocation("/skip")).message == "skipped"


def test_help_takes_the_repositorys_config():
    config = RepoConfig.model_validate({"rubric": {"axes": ["style", "tests"], "scale": [0, 3]}})
    assert Rubric.of(config) == Rubric(("style", "tests"), (0, 3))
    assert Rubric.of(config.rubric) == Rubric.of(config)
    assert help_text(config) == help_text(Rubric(("style", "tests"), (0, 3)))
    assert help_text(RepoConfig()) == help_text(None) == help_text(REPO_RUBRIC)


def test_help_answers_with_the_repositorys_commands():
    outcome = run(offline_context(Rubric(("style",), (1, 3))), invocation("/help"))
    assert outcome.reply and outcome.ok and not outcome.changed
    assert outcome.message == help_text(Rubric(("style",), (1, 3)))


def test_an_unknown_command_is_an_error():
    assert error_of("/frobnicate") == "`/frobnicate`: there is no such command; `/help` lists them"


# Whole comments, on both backends ---------------------------------------------------------


def test_a_comment_with_several_commands(storage):
    pair_id = new_pair(storage)
    body = """Looked at both.

/prefer B much
B keeps the public API; A renames it.

> /prefer A
(quoted, not a vote)

/rate B correctness=5 security=4
/rate A correctness=2 speed=3
/help
"""
    outcomes = deliver(storage, pair_id, body, comment_id=77)
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert errors(outcomes) == [
        f"`/rate A correctness=2 speed=3`: unknown axis `speed`; this repository's axes are {AXES}"
    ]
    assert outcomes[3].reply and outcomes[3].message == help_text()
    with storage.transaction() as session:
        vote = session.scalars(select(Judgment)).one()
        assert (vote.verdict, vote.strength) == ("B", "much")
        assert vote.rationale == "B keeps the public API; A renames it.\n\n> /prefer A\n(quoted, not a vote)"
        ratings = session.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(r.side, r.axis, r.score) for r in ratings] == [("B", "correctness", 5), ("B", "security", 4)]
    # The comment is edited to fix the score: the vote is unchanged, /help is not answered again.
    [edited] = deliver(
        storage, pair_id, body.replace("speed=3", "security=3"), comment_id=77, edited_at=T0.replace(hour=14)
    )
    assert edited.message == "Updated @alice's scores: B correctness 5, B security 4, A correctness 2, A security 3."


def test_a_vote_from_a_review_body(storage):
    pair_id = new_pair(storage)
    [outcome] = deliver(storage, pair_id, "/prefer neither\nBoth break the build.", source="review", side="B")
    assert outcome.ok
    with storage.transaction() as session:
        vote = session.scalars(select(Judgment)).one()
        assert (vote.source, vote.on_side, vote.verdict, vote.strength) == ("review", "B", "neither", None)
    assert Vote("neither").describe() == "**neither** (both are unacceptable)"
