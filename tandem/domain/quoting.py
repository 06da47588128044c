"""Quoting someone's text in what Tandem's bot writes on GitHub, so that it stays their words.

Text a bot posts is Markdown: an ``@org/team`` in it notifies the team, a ``#12`` or
``org/repo#12`` cross-references an issue, in the bot's name. Whatever a commenter or a submitter
wrote (a command's arguments, a reason, a prompt) goes out only inside code, where GitHub links
nothing, and so that it cannot end that code early:

* ``code_span`` for text within a line: the delimiter is a run of backticks longer than any run
  inside (CommonMark 6.1: a span ends only at a run of the same length), padded with a space on
  each side when the text starts or ends with a backtick, or with a space at both ends (then
  CommonMark strips one space from each end; not from text of spaces only), with line breaks
  turned into spaces, since a paragraph can end at a blank line.
* ``code_block`` for text of many lines: a fenced block whose fence is longer than any run of
  backticks inside (CommonMark 4.5: only a fence at least as long closes it).

Code rather than escaping or zero-width joiners: the text is shown exactly as written and can be
copied back as it was, and there is one rule to check, not a list of what GitHub links.
"""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n]")


def _fence(text: str, shortest: int) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(shortest, longest + 1)


def code_span(text: str) -> str:
    """``text`` as inline code it cannot leave, on one line."""
    text = _LINE_BREAKS.sub(" ", text)
    fence = _fence(text, 1)
    if not text:
        text = " "
    elif "`" in (text[0], text[-1]) or (text[0] == text[-1] == " " and text.strip(" ")):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def code_block(text: str) -> str:
    """``text`` as a fenced code block it cannot leave; starts and ends a line."""
    text = _LINE_BREAKS.sub("\n", text).strip("\n")
    fence = _fence(text, 3)
    return f"{fence}text\n{text}\n{fence}"
