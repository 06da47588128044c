"""What the two PRs say. Identical for A and B but for the letter and the twin link, and built
only from the prompt, the task id and the rubric: never from models or metadata. The prompt is
the submitter's text, so it goes in a code block (tandem.quoting): a mention or an issue
reference in it notifies no one and links nothing."""

from __future__ import annotations

from tandem.judging import Rubric
from tandem.quoting import code_block

CHECK_NAME = "Tandem"


def title(task_id: int, letter: str) -> str:
    return f"Task {task_id} · Option {letter}"


def twin(letter: str) -> str:
    return "B" if letter == "A" else "A"


def body(task_id: int, letter: str, prompt: str, rubric: Rubric, twin_url: str | None, help_text: str) -> str:
    other = twin(letter)
    twin_line = f"[Option {other}]({twin_url})" if twin_url else f"Option {other} (being opened)"
    low, high = rubric.scale
    axes = ", ".join(f"`{axis}`" for axis in rubric.axes)
    return f"""## Task {task_id} · Option {letter}

This draft PR is one of two candidate changes for the same task. Compare it with its twin, {twin_line}.
It will never be merged.

### Prompt

{code_block(prompt)}

### How to judge

1. Review both PRs: read the diffs, leave line comments where something is right or wrong, look at CI.
2. Vote in a comment on either PR: `/prefer A` or `/prefer B` (add `slightly` or `much`), `/prefer tie` or `/prefer neither`.
   Everything you write after the command is recorded as your rationale.
3. Optionally score each side on the rubric ({axes}, from {low} to {high}): `/rate A {rubric.axes[0]}={high}`.
4. If the task should go on, write the next prompt with `/followup`.

<details><summary>All commands</summary>

{help_text}

</details>
"""
