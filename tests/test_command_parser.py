"""Slash commands are found in the parsed Markdown of a comment, never in quotes, code or HTML."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.domain.commands.parser import Invocation, find_invocations

NAMES = {"prefer", "followup", "reject", "skip"}


def found(body: str | None) -> list[tuple[str, str, int]]:
    return [(i.name, i.args, i.line) for i in find_invocations(body, NAMES)]


def normalized_lines(body: str) -> list[str]:
    """The lines of ``body`` as find_invocations reads them, as CommonMark prescribes."""
    return re.sub(r"\r\n?", "\n", body).replace("\0", "\ufffd").split("\n")


PREFER_A = [("prefer", "A", 1)]

CASES = [
    # Where a command may stand.
    pytest.param("/prefer A", PREFER_A, id="plain"),
    pytest.param("/prefer A  slightly", [("prefer", "A  slightly", 1)], id="inner-spaces-kept"),
    pytest.param("/skip", [("skip", "", 1)], id="no-args"),
    pytest.param("/prefer A   ", PREFER_A, id="trailing-spaces"),
    pytest.param("   /prefer A", PREFER_A, id="three-leading-spaces"),
    pytest.param("    /prefer A", [], id="four-spaces-indented-code"),
    pytest.param("\t/prefer A", [], id="tab-indented-code"),
    pytest.param("text\n\n    /prefer A", [], id="indented-code-after-paragraph"),
    # Four spaces do not make code after a paragraph line, but they look like it to the
    # writer, and a command line is at most three spaces in.
    pytest.param("I pick\n    /prefer A", [], id="four-spaces-paragraph-continuation"),
    pytest.param("/PREFER a", [("prefer", "a", 1)], id="upper-case"),
    pytest.param("/PreFer B", [("prefer", "B", 1)], id="mixed-case"),
    pytest.param("I read both.\n/prefer A", [("prefer", "A", 2)], id="second-line-of-paragraph"),
    pytest.param("Reason  \n/prefer A", [("prefer", "A", 2)], id="after-hard-break-spaces"),
    pytest.param("Reason\\\n/prefer A", [("prefer", "A", 2)], id="after-hard-break-backslash"),
    pytest.param("  \n/prefer A", [("prefer", "A", 2)], id="after-blank-line-of-spaces"),
    # U+2003 EM SPACE is no blank line to CommonMark: it starts the paragraph, and markdown-it
    # trims it off the paragraph's text, which must not shift the line numbers.
    pytest.param("\u2003\n/prefer A", [("prefer", "A", 2)], id="after-line-of-em-space"),
    pytest.param("/prefer A `fast`", [("prefer", "A `fast`", 1)], id="code-in-args"),
    # A setext heading is a paragraph with an underline: the vote above a "---" separator.
    pytest.param("/prefer A\n---\nfooter", PREFER_A, id="setext-heading"),
    pytest.param("# /prefer A", [], id="atx-heading"),
    pytest.param("<!-- note -->\n/prefer A", [("prefer", "A", 2)], id="after-closed-html-comment"),
    # GitHub renders Markdown between blank lines inside <details>, so that is a paragraph.
    pytest.param("<details>\n\n/prefer A\n\n</details>", [("prefer", "A", 3)], id="in-details"),
    # The command's own grammar judges its arguments; the parser keeps them as written.
    pytest.param("/prefer A.", [("prefer", "A.", 1)], id="trailing-punctuation"),
    pytest.param("/prefer A!!", [("prefer", "A!!", 1)], id="trailing-exclamation"),
    pytest.param("Intro\r\n/prefer A\r\n", [("prefer", "A", 2)], id="crlf"),
    pytest.param("Intro\r/prefer A\r", [("prefer", "A", 2)], id="lone-cr"),
    pytest.param("/prefer\u3000A", [("prefer", "A", 1)], id="ideographic-space-ends-name"),
    # json.loads lets lone surrogates through.
    pytest.param("\ud800\n\n/prefer A \udc00", [("prefer", "A \udc00", 3)], id="lone-surrogates"),
    pytest.param("a\0b\nwhy\n/prefer A\nmore", [("prefer", "A", 3)], id="after-nul"),
    # Code.
    pytest.param("```\n/prefer A\n```", [], id="backtick-fence"),
    pytest.param("~~~\n/prefer A\n~~~", [], id="tilde-fence"),
    pytest.param("```\n/prefer A", [], id="unclosed-fence"),
    pytest.param("~~~~\n/prefer A\n~~~\n/prefer B", [], id="unclosed-fence-shorter-closer"),
    pytest.param("```python\n/prefer A\n```\n/prefer B", [("prefer", "B", 4)], id="after-fence"),
    pytest.param("  ```\n/prefer A\n  ```", [], id="indented-fence"),
    pytest.param("`/prefer A`", [], id="inline-code"),
    pytest.param("see `code\n/prefer A` here", [], id="multi-line-code-span"),
    # Quotes: someone else's words, e.g. from GitHub's "Quote reply".
    pytest.param("> /prefer A", [], id="quote"),
    pytest.param(">/prefer A", [], id="quote-without-space"),
    pytest.param("> > /prefer A", [], id="nested-quote"),
    pytest.param("> text\n>\n> > /prefer A", [], id="nested-quote-later-line"),
    # CommonMark: a paragraph line after a quoted paragraph line is a lazy continuation of the
    # quote, and markdown-it (like GitHub) renders "/prefer A" inside the quote.
    pytest.param("> quoted\n/prefer A", [], id="lazy-quote-continuation"),
    pytest.param("> quoted\n\n/prefer A", [("prefer", "A", 3)], id="after-quote-and-blank-line"),
    pytest.param("> /prefer A\n\nChanged my mind:\n/prefer B", [("prefer", "B", 4)], id="quoted-older-vote"),
    # List items: deliberately never commands (see the module docstring).
    pytest.param("- /prefer A", [], id="dash-list-item"),
    pytest.param("* /prefer A", [], id="star-list-item"),
    pytest.param("1. /prefer A", [], id="ordered-list-item"),
    pytest.param("- reason\n  /prefer A", [], id="list-item-second-line"),
    pytest.param("- reason\n/prefer A", [], id="lazy-list-continuation"),
    pytest.param("- reason\n\n/prefer A", [("prefer", "A", 3)], id="after-list-and-blank-line"),
    pytest.param("- > /prefer A", [], id="quote-in-list-item"),
    # HTML.
    pytest.param("<!-- /prefer A -->", [], id="html-comment"),
    pytest.param("<!--\n/prefer A\n-->", [], id="multi-line-html-comment"),
    pytest.param("text <!--\n/prefer A\n-->", [], id="inline-multi-line-html-comment"),
    pytest.param(
        "text <!-- hidden\n/prefer A -->\n/prefer B",
        [("prefer", "B", 3)],
        id="after-inline-html-comment",
    ),
    pytest.param("a <span\n/prefer='x'>", [], id="inside-inline-html-tag"),
    pytest.param("<div>\n/prefer A\n</div>", [], id="html-block"),
    pytest.param('[see](\n/prefer "title")', [], id="link-destination"),
    # Not at the start of a line, or not the slash and a known name.
    pytest.param("I would /prefer A", [], id="mid-line"),
    pytest.param("/preferA", [], id="name-runs-on"),
    pytest.param("/prefer, A", [], id="punctuation-after-name"),
    pytest.param("/foo A", [], id="unknown-command"),
    pytest.param("\\/prefer A", [], id="escaped-slash"),
    pytest.param("\u2215prefer A", [], id="division-slash"),
    pytest.param("\uff0fprefer A", [], id="fullwidth-solidus"),
    pytest.param("\u2044prefer A", [], id="fraction-slash"),
    pytest.param("\u200b/prefer A", [], id="zero-width-space"),
    pytest.param("\ufeff/prefer A", [], id="byte-order-mark"),
    pytest.param("\u00a0/prefer A", [], id="no-break-space"),
    pytest.param("/s\u212aip", [], id="kelvin-sign-lowercases-to-k"),
    # Only "\n" (and "\r") end a line in Markdown, unlike str.splitlines.
    pytest.param("note\u2028/prefer A", [], id="unicode-line-separator"),
    # Several.
    pytest.param(
        "/prefer A\n/followup add docs\n\n/reject B",
        [("prefer", "A", 1), ("followup", "add docs", 2), ("reject", "B", 4)],
        id="several",
    ),
    pytest.param("", [], id="empty"),
    pytest.param(None, [], id="none"),
    pytest.param(" \n\n\t", [], id="whitespace"),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_finds_commands(body: str | None, expected: list[tuple[str, str, int]]) -> None:
    assert found(body) == expected


def test_no_names_no_commands() -> None:
    assert find_invocations("/prefer A", []) == []


def test_names_are_matched_case_insensitively() -> None:
    assert [i.name for i in find_invocations("/prefer A", ["Prefer"])] == ["prefer"]


def test_text_runs_to_the_next_command() -> None:
    body = (
        "Both work.\n"
        "/prefer A\n"
        "A handles the error.\n"
        "\n"
        "It also has tests.\n"
        "/followup\n"
        "Please add docs:\n"
        "\n"
        "```py\n"
        "/prefer B\n"
        "```\n"
        "\n"
        "> /reject old\n"
        "/foo is no command\n"
    )
    assert find_invocations(body, NAMES) == [
        Invocation("prefer", "A", "A handles the error.\n\nIt also has tests.", 2),
        Invocation(
            "followup",
            "",
            "Please add docs:\n\n```py\n/prefer B\n```\n\n> /reject old\n/foo is no command",
            6,
        ),
    ]


def test_text_keeps_the_markdown_of_its_lines() -> None:
    body = "/followup   \r\n\r\n    first = 1\r\n    *second* = 2  \r\n\r\n"
    [followup] = find_invocations(body, NAMES)
    assert followup.text == "    first = 1\n    *second* = 2"


def test_text_before_the_first_command_belongs_to_no_command() -> None:
    [prefer] = find_invocations("A is shorter.\n\n/prefer A", NAMES)
    assert prefer.text == ""


def test_a_64_kb_comment_finds_only_its_two_commands() -> None:
    section = (
        "The change in `parser.py` is **smaller**, see [the docs](https://example.com).\n"
        "It keeps <kbd>Ctrl</kbd> working and handles `None`.\n"
        "\n"
        "```python\n"
        "def f(x):\n"
        "    return x  # /prefer B\n"
        "```\n"
        "\n"
        "> Quoted: /prefer B\n"
        "\n"
        "- one\n"
        "- two\n"
        "\n"
    )
    body = "/prefer A\n" + section * (64 * 1024 // len(section)) + "/followup\nAdd tests.\n"
    assert [(i.name, i.args) for i in find_invocations(body, NAMES)] == [("prefer", "A"), ("followup", "")]


# Pieces of Markdown that change where commands may be, to be glued together at random.
MARKDOWNISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "/prefer A",
                "/PREFER b.",
                "/followup",
                "/reject no",
                "/skip",
                "/foo",
                "/preferA",
                "text",
                "> ",
                ">",
                "```",
                "~~~",
                "    ",
                "   ",
                "\t",
                "<!--",
                "-->",
                "<div>",
                "- ",
                "1. ",
                "`",
                "[",
                "](",
                ")",
                "\\",
                "*",
                "---",
                "===",
                "\u2215prefer A",
                "\u200b",
                "\u2003",
                "\n",
                "\n",
                "\n",
                "\r\n",
                "\r",
                "\n\n",
                "  \n",
            ]
        ),
        st.text(max_size=4),
    ),
    max_size=40,
).map("".join)

# Any text, lone surrogates included (json.loads lets them through), and Markdown-ish text.
BODIES = st.one_of(st.text(), st.text(st.characters(exclude_categories=())), MARKDOWNISH)


@settings(max_examples=300, deadline=None)
@given(BODIES)
def test_each_invocation_is_its_line(body: str) -> None:
    invocations = find_invocations(body, NAMES)
    lines = normalized_lines(body)
    for invocation in invocations:
        line = lines[invocation.line - 1]
        command = re.match(r" {0,3}/(\S+)(.*)", line)
        assert command is not None
        assert command[1].lower() == invocation.name
        assert command[2].strip() == invocation.args
    numbers = [invocation.line for invocation in invocations]
    assert numbers == sorted(set(numbers))


@settings(max_examples=200, deadline=None)
@given(BODIES)
def test_nothing_in_a_quote_counts(body: str) -> None:
    quoted = "\n".join("> " + line for line in normalized_lines(body))
    assert find_invocations(quoted, NAMES) == []


@settings(max_examples=200, deadline=None)
@given(BODIES)
def test_nothing_in_a_fenced_code_block_counts(body: str) -> None:
    longest_run = max((len(run) for run in re.findall("`+", body)), default=0)
    fence = "`" * max(3, longest_run + 1)
    assert find_invocations(f"{fence}\n{body}\n{fence}", NAMES) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["/prefer A", "/skip", "/reject why not", "Words."]), max_size=10))
def test_each_paragraph_that_is_a_command_counts(paragraphs: list[str]) -> None:
    body = "\n\n".join(paragraphs)
    invocations = find_invocations(body, NAMES)
    assert [(i.line, f"/{i.name} {i.args}".strip()) for i in invocations] == [
        (2 * index + 1, text) for index, text in enumerate(paragraphs) if text.startswith("/")
    ]
