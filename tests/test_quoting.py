"""What Tandem's bot writes never lets someone's text mention people or reference issues: every
echoed text is in code it cannot leave, checked by rendering it with markdown-it-py."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tandem.domain import acknowledgments, pr_text
from tandem.domain.judging import Rubric
from tandem.domain.quoting import code_block, code_span
from tandem.domain.rounds import Turn
from tests.support.judging import T0, deliver, errors, new_pair

_MARKDOWN = MarkdownIt("commonmark")
# What GitHub links in text outside code: @user, @org/team, #12, org/repo#12.
_LINKED = re.compile(r"@[A-Za-z0-9][\w-]*(?:/[\w-]+)?|#[0-9]+")
# Backticks, spaces and line breaks are what could break out of code; the rest is filler.
_HOSTILE = st.text(st.sampled_from("`` \n\r\t@#/ab1\\<>*_~[]()!"), max_size=40)


def linked_outside_code(markdown: str) -> list[str]:
    """The pieces of rendered text, outside code, that GitHub would turn into a mention or reference."""
    found = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.children:
                walk(token.children)
            elif token.type in ("text", "html_inline", "html_block"):
                found.extend(_LINKED.findall(token.content))

    walk(_MARKDOWN.parse(markdown))
    return found


@given(_HOSTILE)
def test_a_code_span_holds_any_text_whole(text):
    [paragraph] = [t for t in _MARKDOWN.parse(f"a {code_span(text)} b") if t.type == "inline"]
    kinds = [(child.type, child.content) for child in paragraph.children]
    assert kinds == [("text", "a "), ("code_inline", re.sub(r"\r\n|[\r\n]", " ", text) or " "), ("text", " b")]


@given(_HOSTILE)
def test_a_code_block_holds_any_text_whole(text):
    tokens = _MARKDOWN.parse(f"before\n\n{code_block(text)}\n\n@after")
    [fence] = [t for t in tokens if t.type == "fence"]
    body = re.sub(r"\r\n|[\r\n]", "\n", text).strip("\n")
    assert fence.content == body + "\n"
    assert linked_outside_code(f"{code_block(text)}\n") == []


def test_the_padding_and_fence_follow_commonmark():
    assert code_span("/undo") == "`/undo`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x") == "`` `x ``"
    assert code_span(" both ") == "`  both  `"
    assert code_span("") == "` `" and code_span("  ") == "`  `"
    assert code_block("x\n```y") == "````text\nx\n```y\n````"


def test_a_hostile_command_puts_no_mention_or_reference_in_the_reply(storage):
    """A comment with backticks used to close the reply's code span: `@org/team` and `#1` then
    became a team mention and a cross-reference, in the bot's name. Outsiders can do this."""
    pair_id = new_pair(storage)
    bodies = [
        "/prefer ` @evals/raters #1 `",
        "/rate A ``x`` @evals/raters=3 #2",
        "/rate A `@evals/raters`=4",
        "/approve @ok` @evals/raters",
    ]
    for body in bodies:
        roles = ("reviewer",) if body.startswith("/approve") else ("rater",)
        [message] = errors(deliver(storage, pair_id, body, roles=roles))
        reply = acknowledgments._reply_text("alice", [{"ok": False, "reply": True, "message": message}])
        assert linked_outside_code(reply) == ["@alice"], (body, reply)


def test_a_rejection_reason_is_quoted(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A")
    [outcome] = deliver(
        storage, pair_id, "/reject see #4, ask @evals/leads\n` and `@evals/raters`", "rev", roles=("reviewer",)
    )
    # The reason is quoted; the reply mentions only the reviewer and the rater (twice: "@alice, vote again").
    assert outcome.ok and linked_outside_code(outcome.message) == ["@rev", "@alice", "@alice"]


@given(_HOSTILE)
def test_a_prompt_in_a_pr_body_notifies_no_one(prompt):
    first = Turn(round=1, prompt=f"cc @evals/raters, see #12\n{prompt}", author=None, at=T0)
    followup = Turn(round=2, prompt=prompt, author="@evals/raters", at=T0)
    body = pr_text.body(7, "A", [first, followup], Rubric(), None, "help")
    assert linked_outside_code(body) == []
