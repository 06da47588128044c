"""Lines that look like a command but are not read as one, so that the rater is told, not left to
believe they voted: a mistyped name (``/prefre A``), a command written as a list item
(``- /prefer A``), and a command on the line right after a quote, which CommonMark reads as part
of the quote (a lazy continuation line). Lines that start with ``>`` are quotes on purpose (how
one quotes someone else's vote) and are passed over in silence.

Each near miss becomes a failed Outcome whose message says what to write instead.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Collection
from dataclasses import dataclass

from markdown_it.utils import EnvType

from tandem.domain.commands.parser import _MARKDOWN, _lines_after_breaks, _normalize, _text_lines
from tandem.domain.commands.registry import Outcome
from tandem.domain.quoting import code_span

# At most three spaces, maybe a list marker, then "/" and a word that is no path ("/usr/bin").
_ATTEMPT = re.compile(r" {0,3}(?:(?:[-*+]|[0-9]{1,9}[.)])[ \t]+)?/([A-Za-z][A-Za-z0-9_-]*)(?![\w/-])(.*)")
_LIST = "list"
_QUOTE = "quote"
_CONTAINERS = {"blockquote_open": _QUOTE, "list_item_open": _LIST}


@dataclass(frozen=True)
class NearMiss:
    line: int  # 1-based
    written: str  # the command as written, without any list marker
    where: str | None  # "list", "quote" or None (a paragraph of its own)
    suggestion: str | None  # the command name it is closest to, if it is not one


def find_near_misses(body: str | None, names: Collection[str]) -> list[NearMiss]:
    """The lines of ``body`` that look like an attempt at one of ``names`` but are not read."""
    if not body:
        return []
    source = _normalize(body)
    lines = source.split("\n")
    attempts = {index: match for index, line in enumerate(lines) if (match := _ATTEMPT.fullmatch(line))}
    if not attempts:
        return []
    wanted = {name.lower() for name in names}
    env: EnvType = {}
    tokens = _MARKDOWN.parse(source, env)
    containers: list[str] = []
    misses = []
    for token, inline in itertools.pairwise(tokens):
        if token.type in _CONTAINERS:
            containers.append(_CONTAINERS[token.type])
        elif token.type in ("blockquote_close", "list_item_close"):
            containers.pop()
        if token.type not in ("paragraph_open", "heading_open") or inline.type != "inline":
            continue
        first, end = _text_lines(inline, lines)
        if not any(first <= index < end for index in attempts):
            continue
        where = _LIST if _LIST in containers else _QUOTE if containers else None
        for index in [first, *_lines_after_breaks(inline, first, env)]:
            if index in attempts and (miss := _near_miss(index, attempts[index], where, wanted)):
                misses.append(miss)
    return misses


def _near_miss(index: int, match: re.Match, where: str | None, names: set[str]) -> NearMiss | None:
    name = match[1].lower()
    known = name in names
    close = None if known else next(iter(difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)), None)
    written = f"/{match[1]} {match[2].strip()}".rstrip()
    if where is None and known:
        return None  # a command, read as such
    if where is not None and not (known or close):
        return None  # a path or a word in a list or quote, most likely
    return NearMiss(index + 1, written, where, close)


def answers(misses: list[NearMiss]) -> list[Outcome]:
    """A failed Outcome for each near miss, saying what to write."""
    outcomes = []
    for miss in misses:
        fix = f"did you mean {code_span('/' + miss.suggestion)}?" if miss.suggestion else "`/help` lists them"
        if miss.where == _LIST:
            why = "a command in a list item is not read; write it at the start of a line, outside lists and quotes"
        elif miss.where == _QUOTE:
            why = (
                "this line continues the quote above it (no blank line between), so it was not read; "
                "leave a blank line after a quote before a command"
            )
        else:
            why = "there is no such command"
        if miss.suggestion and miss.where is not None:
            why += f" (and {fix})"
        elif miss.where is None:
            why += f"; {fix}"
        outcomes.append(Outcome(f"{code_span(miss.written[:61])}: {why}", changed=False, reply=True, ok=False))
    return outcomes
