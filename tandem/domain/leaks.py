"""The identity-leak scan: does a model's output say which model (or vendor) wrote it?

Raters must not be able to tell the models apart by anything but their code, so each output is
scanned when it is submitted (a task's outputs, and each round's outputs from the model runner)
for:

- the task's model names (both of them, in either output);
- the task's metadata values: its text values (numbers and booleans match too much ordinary
  code to mean anything);
- identity words: vendor and model-family names and phrases that give an AI author away
  (``IDENTITY_WORDS``, or the list given as ``leaks.words`` in `.github/tandem.yml` or in the
  task, which replaces it).

Names shorter than ``MIN_CHARS`` characters are not looked for (``x``, ``v2``: they would be
found in any code). Matches are case-insensitive, whole words only (``gpt`` does not match
``gpt_tokenizer`` or ``chatgptish``), and a phrase matches across any whitespace. What is scanned is what the model
wrote: a patch's added lines, the paths it creates (a new file's, even an empty one's, a
rename's or copy's target), what its binary hunks write, and any text before its first file (a
commit message, as ``git format-patch`` writes it), never its context or removed lines, which
are the repository's; whole files are scanned whole, with their paths.

``on_leak`` (``leaks.on_leak`` in `.github/tandem.yml`, or the task's, which wins) says what a
finding does: ``flag`` (the default) records it on the task, which is then not blind (every
export row of it carries ``blind: false``); ``refuse`` rejects the submission, naming each
output's field and what it names. Findings name models, so they are shown only to the research
team (``tandem task show``, ``GET /api/tasks/{id}``), never on GitHub.
"""

from __future__ import annotations

import base64
import itertools
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from tandem.domain.task_spec import MAX_OUTPUT_BYTES, InvalidTask, LeakSettings, OutputSpec, output_label

MIN_CHARS = 3
IDENTITY_WORDS = (
    # vendors
    "OpenAI",
    "Anthropic",
    "DeepMind",
    "Mistral",
    "Cohere",
    "xAI",
    "Meta AI",
    "DeepSeek",
    "Moonshot AI",
    # model families
    "GPT",
    "ChatGPT",
    "Claude",
    "Gemini",
    "Gemma",
    "Bard",
    "Llama",
    "Mixtral",
    "Qwen",
    "Grok",
    "Copilot",
    # phrases
    "as an AI language model",
    "as a large language model",
    "as an AI assistant",
    "I am an AI",
    "I'm an AI",
    "language model trained by",
    "AI-generated",
)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _pattern(needle: str) -> str:
    return r"(?<!\w)" + r"\s+".join(re.escape(word) for word in needle.split()) + r"(?!\w)"


def _needles(models: list[str], metadata: dict[str, Any], words: list[str]) -> dict[str, tuple[str, str]]:
    """What to look for, normalized (lower case, single spaces): (as spelled, what kind of name)."""
    needles: dict[str, tuple[str, str]] = {}
    for kind, names in (("identity word", words), ("metadata value", list(_texts(metadata))), ("model name", models)):
        needles |= {_normal(name): (name.strip(), kind) for name in names if len(name.strip()) >= MIN_CHARS}
    return needles


def _texts(value: Any) -> Iterator[str]:
    """The text values in a task's metadata, however nested."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _written(patch: str) -> str:
    """What a patch's author wrote: the text before its first file, its added lines, the paths it
    creates (a new file's, a rename's or copy's target, even with no line of text) and what its
    binary hunks write."""
    kept, started, section = [], False, ""
    lines = patch.splitlines()
    budget = [MAX_OUTPUT_BYTES]  # what all its binary hunks may write, together: each can inflate a thousandfold
    for at, line in enumerate(lines):
        started = started or line.startswith(("diff --git ", "--- "))
        if line.startswith("diff --git "):
            section = line
        if not started or (line.startswith("+") and not line.startswith("+++ /dev/null")):
            kept.append(line.removeprefix("+++ b/").removeprefix("+"))
        elif line.startswith(("rename to ", "copy to ")):
            kept.append(line.split(" to ", 1)[1])
        elif line.startswith("new file mode ") and section:
            kept.append(section.removeprefix("diff --git "))  # both halves are the new path
        elif line.startswith(("literal ", "delta ")) and at > 0 and lines[at - 1] == "GIT binary patch":
            # The first hunk only: the second goes back to the repository's own content.
            kept.append(_binary_hunk(line, itertools.islice(lines, at + 1, None), budget))
    return "\n".join(kept)


def _binary_hunk(header: str, following: Iterable[str], budget: list[int]) -> str:
    """The bytes a `GIT binary patch` hunk writes, as text: a literal's whole content, a delta's
    inserted bytes (its copies are of the repository's own). Empty if it cannot be read (git
    refuses such a patch anyway). No more than budget[0] bytes are inflated; it is spent."""
    data = bytearray()
    for line in following:
        if not line:
            break
        size = ord(line[0]) - (ord("A") - 1 if line[0] <= "Z" else ord("a") - 27)
        try:
            data += base64.b85decode(line[1:])[:size]
        except ValueError:
            return ""
    try:
        raw = zlib.decompressobj().decompress(bytes(data), budget[0]) if budget[0] > 0 else b""
    except zlib.error:
        return ""
    budget[0] -= len(raw)
    if header.startswith("literal "):
        return raw.decode(errors="replace")
    return _delta_inserts(raw).decode(errors="replace")


def _delta_inserts(delta: bytes) -> bytes:
    """The bytes a git delta inserts (after its two size headers: copy and insert instructions)."""
    at = 0
    for _header in range(2):  # the source's and the result's sizes, as varints
        while at < len(delta) and delta[at] & 0x80:
            at += 1
        at += 1
    inserted = bytearray()
    while at < len(delta):
        op = delta[at]
        at += 1
        if op & 0x80:  # a copy from the source: skip its offset and size bytes
            at += bin(op & 0x7F).count("1")
        else:
            inserted += delta[at : at + op] + b"\n"
            at += op
    return bytes(inserted)


def _fields(position: int, output: OutputSpec) -> Iterator[tuple[str, str]]:
    """(field, text) of an output, fields named as in the submission."""
    if output.patch is not None:
        yield f"outputs.{position}.patch", _written(output.patch)
    for path, content in (output.files or {}).items():
        yield f"outputs.{position}.files.{path}", f"{path}\n{content or ''}"


def scan(
    outputs: list[OutputSpec], *, models: list[str], metadata: dict[str, Any], words: list[str]
) -> list[dict[str, str]]:
    """Each (output, field, name) found: ``model`` is whose output it is, ``found`` what it
    names (as the task or the word list spells it), ``kind`` which list it is on."""
    needles = _needles(models, metadata, words)
    if not needles:
        return []
    # Longest first, so "Meta AI" is reported rather than a shorter word inside it.
    matcher = re.compile("|".join(_pattern(n) for n in sorted(needles, key=len, reverse=True)), re.IGNORECASE)
    findings = []
    for position, output in enumerate(outputs):
        for field, text in _fields(position, output):
            for needle in sorted({_normal(match.group()) for match in matcher.finditer(text)}):
                spelled, kind = needles[needle]
                findings.append({"model": output.model, "field": field, "found": spelled, "kind": kind})
    return findings


def check(
    outputs: list[OutputSpec], *, models: list[str], metadata: dict[str, Any], settings: LeakSettings, round_number: int
) -> list[dict[str, Any]]:
    """The findings, each with its round, to record on the task; InvalidTask naming each one
    instead when ``settings.on_leak`` is refuse."""
    words = list(IDENTITY_WORDS) if settings.words is None else settings.words
    findings = scan(outputs, models=models, metadata=metadata, words=words)
    if findings and settings.on_leak == "refuse":
        labels = {output.model: output_label(position, output.model) for position, output in enumerate(outputs)}
        raise InvalidTask(
            [
                {
                    "field": finding["field"],
                    "problem": f"{labels[finding['model']]} names {finding['found']!r} ({finding['kind']}); "
                    "outputs that could tell raters which model wrote them are refused (on_leak: refuse)",
                }
                for finding in findings
            ]
        )
    return [{"round": round_number, **finding} for finding in findings]
