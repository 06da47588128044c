"""Find slash commands such as ``/prefer A slightly`` in a GitHub comment.

A comment is Markdown, so, as rust-lang/triagebot does, commands are looked for in the parsed
document, not with a regex over the raw text: a regex cannot tell a vote from a quoted reply
(``> /prefer A``), an example in a code block, or a line hidden in an HTML comment.

A line is a command when all of these hold:

* It is part of a top-level paragraph. Block quotes, list items, code blocks and HTML blocks
  never hold commands: a quote is someone else's words (GitHub's "Quote reply" makes them),
  and list items are left out to keep the rule simple and predictable; ``- /prefer A`` reads
  as one bullet of a list, not as a vote. CommonMark's lazy continuation lines follow the
  rendering: ``> quoted`` then ``/prefer A`` on the next line is still inside the quote.
  (tandem.domain.commands.near_misses tells the rater when a list item or such a line was skipped.)
  A setext heading counts as a paragraph (it is one, followed by an underline), so
  ``/prefer A`` followed by a ``---`` separator line is still a vote.
* It starts a new line of the rendered text, not the inside of something begun on an earlier
  line: a code span, an inline HTML comment or tag, a link destination.
* After at most three spaces (four make an indented code block, or look like one after a
  paragraph line) comes ``/`` and then one of the known names, in ASCII, in any case, ending
  at whitespace or at the end of the line. Look-alikes of ``/`` and invisible characters
  before it do not count.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.parser_inline import RuleFuncInlineType
from markdown_it.rules_inline import StateInline, escape, newline
from markdown_it.token import Token
from markdown_it.utils import EnvType

from tandem.infra.errors import known


@dataclass(frozen=True)
class Invocation:
    name: str  # lower-cased command name, e.g. "prefer"
    args: str  # rest of the command's line after the name, stripped, case kept: "A slightly"
    # The comment's Markdown source after the command line, up to the next command or the end,
    # without leading blank lines or trailing whitespace (the first line keeps its indentation,
    # which may make it code): the rationale, or the free text of /followup and /reject.
    text: str
    # 1-based line of the command in the body, once "\r\n" and "\r" are "\n" (and NUL is
    # U+FFFD, as in args and text).
    line: int


# The command's name runs to the first whitespace; its arguments are the rest of the line.
_COMMAND_LINE = re.compile(r" {0,3}/(\S+)(.*)")

# Key in Token.meta of a line break's offset, in its paragraph's text, of the newline it is.
_NEWLINE_OFFSET = "tandem_newline_offset"


def _recording_newline_offsets(rule: RuleFuncInlineType) -> RuleFuncInlineType:
    """Wrap an inline rule that makes line breaks so that each break knows its newline.

    markdown-it gives inline tokens no source positions. Breaks are all we need: a newline that
    is no break was swallowed by a code span, an HTML comment or a link, and the line after it
    is inside that construct.
    """

    def rule_recording_offsets(state: StateInline, silent: bool) -> bool:
        start, first_new_token = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        for token in state.tokens[first_new_token:]:
            if token.type in ("softbreak", "hardbreak"):
                token.meta[_NEWLINE_OFFSET] = state.src.find("\n", start, state.pos)
        return True

    return rule_recording_offsets


def _new_markdown_parser() -> MarkdownIt:
    markdown = MarkdownIt("commonmark")
    # Parsing inline text is most of markdown-it's time, and a paragraph needs it only when a
    # line after its first one looks like a command, so _text_line_starts does it on demand.
    markdown.disable("inline")
    # The two rules that turn a newline into a break: "newline" and backslash-newline "escape".
    markdown.inline.ruler.at("newline", _recording_newline_offsets(newline))
    markdown.inline.ruler.at("escape", _recording_newline_offsets(escape))
    return markdown


_MARKDOWN = _new_markdown_parser()


def find_invocations(body: str | None, names: Collection[str]) -> list[Invocation]:
    """Return the commands among ``names`` that ``body`` invokes, in order."""
    if not body or not names:
        return []
    wanted = {name.lower() for name in names}
    source = _normalize(body)
    lines = source.split("\n")
    # Only lines that look like commands can be commands; most comments have none, and then
    # there is no Markdown to parse.
    commands = {}
    for index, line in enumerate(lines):
        if command := _command_on(line, wanted):
            commands[index] = command
    if not commands:
        return []
    found = [i for i in _text_line_starts(source, lines, sorted(commands)) if i in commands]
    if not found:  # every line that looked like a command is code, a quote's continuation, HTML...
        return []
    ends = [*found[1:], len(lines)]
    return [
        Invocation(*commands[index], text=_rationale(lines[index + 1 : end]), line=index + 1)
        for index, end in zip(found, ends, strict=True)
    ]


def _normalize(body: str) -> str:
    # CRLF and a lone CR end a line as LF does, and NUL becomes U+FFFD (CommonMark 2.1, 2.3).
    # markdown-it does the same to its input, so its line map and our lines agree.
    # Only "\n" ends a line: str.splitlines would also split at "\x0c", "\u2028" and others.
    return body.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _command_on(line: str, wanted: set[str]) -> tuple[str, str] | None:
    """Return (name, args) if ``line``, read alone, invokes one of the ``wanted`` commands."""
    match = _COMMAND_LINE.fullmatch(line)
    # isascii: "\u212a".lower() is "k", so "/s\u212aip" would otherwise be "/skip".
    if match is None or not match[1].isascii() or match[1].lower() not in wanted:
        return None
    return match[1].lower(), match[2].strip()


def _text_line_starts(source: str, lines: list[str], candidates: list[int]) -> Iterator[int]:
    """Yield, in order, the 0-based lines that begin a line of a top-level paragraph's text.

    Lines after a paragraph's first one are only looked at if one of the sorted ``candidates``
    is among them.
    """
    env: EnvType = {}  # collects link reference definitions, which the inline parser needs
    tokens = _MARKDOWN.parse(source, env)
    for opener, inline in itertools.pairwise(tokens):
        # ATX headings ("# ...") are let through too: their line starts with "#", never "/".
        if opener.level == 0 and opener.type in ("paragraph_open", "heading_open"):
            first, end = _text_lines(inline, lines)
            yield first
            later = bisect_right(candidates, first)
            if later < len(candidates) and candidates[later] < end:
                yield from _lines_after_breaks(inline, first, env)


def _text_lines(inline: Token, lines: list[str]) -> tuple[int, int]:
    """Return the range of lines that an inline token's text comes from."""
    first, end = known(inline.map, "an inline token's source lines")  # a block rule sets it on every inline token
    # markdown-it trims the text, which can drop whole leading lines that hold only whitespace
    # such as U+2003 EM SPACE (not blank to CommonMark, so they begin the paragraph).
    text = "\n".join(lines[first:end])
    return first + text.count("\n", 0, text.find(inline.content)), end


def _lines_after_breaks(inline: Token, first: int, env: EnvType) -> Iterator[int]:
    """Yield the lines that follow a line break in the text of ``inline``, which starts at line
    ``first``: the ones that do not continue a code span, an HTML comment or a link."""
    children: list[Token] = []
    _MARKDOWN.inline.parse(inline.content, _MARKDOWN, env, children)
    newlines = [match.start() for match in re.finditer("\n", inline.content)]
    for child in children:
        if _NEWLINE_OFFSET in child.meta:
            yield first + 1 + bisect_left(newlines, child.meta[_NEWLINE_OFFSET])


def _rationale(lines: list[str]) -> str:
    """Join ``lines`` without the blank lines around them, keeping the first one's indent."""
    text = "\n".join(lines).rstrip()
    first_visible = len(text) - len(text.lstrip())
    return text[text.rfind("\n", 0, first_visible) + 1 :]
