"""Raters are never left guessing: a line that looks like a command but is not read gets an answer."""

from __future__ import annotations

import pytest

from tandem.domain import acknowledgments
from tandem.domain.commands import command_names, help_text
from tandem.domain.commands.near_misses import answers, find_near_misses


def told(body: str) -> list[str]:
    return [outcome.message for outcome in answers(find_near_misses(body, command_names()))]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/prefre A", ["`/prefre A`: there is no such command; did you mean `/prefer`?"]),
        ("I read both.\n/undoo", ["`/undoo`: there is no such command; did you mean `/undo`?"]),
        ("/frobnicate", ["`/frobnicate`: there is no such command; `/help` lists them"]),
        (
            "- /prefer A",
            [
                "`/prefer A`: a command in a list item is not read; write it at the start of a line, "
                "outside lists and quotes"
            ],
        ),
        (
            "1. /rate A correctness=4",
            [
                "`/rate A correctness=4`: a command in a list item is not read; write it at "
                "the start of a line, outside lists and quotes"
            ],
        ),
        (
            "* /prefr B",
            [
                "`/prefr B`: a command in a list item is not read; write it at the start of a line, "
                "outside lists and quotes (and did you mean `/prefer`?)"
            ],
        ),
        (
            "> I agree with this:\n/prefer A",
            [
                "`/prefer A`: this line continues the quote above it (no blank line between), so it was not read; "
                "leave a blank line after a quote before a command"
            ],
        ),
    ],
)
def test_an_attempted_command_that_is_not_read_is_answered(body, expected):
    assert told(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "/prefer A",  # read as a command
        "> /prefer A",  # quoting someone's vote, on purpose
        "> quoted\n\n/prefer A",
        "```\n/prefre A\n```",
        "`/prefre A`",
        "See /tmp for the logs.",
        "/usr/bin/env is used",
        "- /etc/hosts changed",
        "- a list\n- of things",
        "",
    ],
)
def test_what_is_no_attempt_is_left_alone(body):
    assert told(body) == []


def test_hostile_text_in_a_near_miss_stays_in_code():
    [message] = told("/prefre ` @evals/raters #1")
    assert message.startswith("``/prefre ` @evals/raters #1``: ")


def test_the_rule_is_in_help():
    assert "a line right after a quoted line with no blank line between" in help_text()


def test_a_review_body_is_acknowledged_in_words_once():
    recorded = {
        "ok": True,
        "reply": False,
        "changed": True,
        "message": "Recorded @r's vote in round 1: **A** (clearly).",
    }
    assert acknowledgments._reply_text("r", [recorded], "review") == "@r\n\n" + recorded["message"]
    # A comment gets a +1 instead; a review processed again was acknowledged already.
    assert acknowledgments._reply_text("r", [recorded], "comment") is None
    assert acknowledgments._reply_text("r", [recorded | {"changed": False}], "review") is None
