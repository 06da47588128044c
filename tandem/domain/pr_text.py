"""What the two PRs say. Identical for A and B but for the letter and the twin link, and built
only from the prompt, the task id and the rubric: never from models or metadata. The prompt is
the submitter's text, so it goes in a code block (tandem.domain.quoting): a mention or an issue
reference in it notifies no one and links nothing."""

from __future__ import annotations

from tandem.domain.judging import Rubric
from tandem.domain.quoting import code_block, code_span

CHECK_NAME = "Tandem"


def title(task_id: int, letter: str) -> str:
    return f"Task {task_id} · Option {letter}"


def twin(letter: str) -> str:
    return "B" if letter == "A" else "A"


MAX_BODY_CHARS = 65_000  # GitHub refuses a PR body over 65,536 characters


def _conversation(turns: list) -> str:
    """The first prompt and each follow-up, in order; the oldest follow-ups are elided if the whole
    would not fit in a PR body (`tandem task show` has them all)."""
    parts = [code_block(turns[0].prompt)]
    for turn in turns[1:]:
        who = f" by {code_span(turn.author)}" if turn.author else ""
        parts.append(f"#### Follow-up, round {turn.round}{who}\n\n{code_block(turn.prompt)}")
    budget = MAX_BODY_CHARS - 5_000  # the rest of the body
    for index in range(1, len(parts) - 1):
        if sum(map(len, parts)) <= budget:
            break
        parts[index] = f"#### Follow-up, round {turns[index].round}\n\n(too long to show with the rest)"
    return "\n\n".join(parts)


def rounds_summary(rounds: list) -> str:
    """Every round for the check run's summary: its number, status and prompt's first line."""
    lines = []
    for round_ in rounds:
        if round_.withdrawn_at is not None:
            continue
        state = f"{round_.status}, {round_.closed_reason}" if round_.closed_reason else round_.status
        first = (round_.prompt.strip().splitlines() or [""])[0]
        lines.append(f"- Round {round_.number} ({state}): {code_span(first[:120] + ('…' if len(first) > 120 else ''))}")
    return "\n".join(lines)


def body(task_id: int, letter: str, turns: list, rubric: Rubric, twin_url: str | None, help_text: str) -> str:
    """turns: the conversation so far (tandem.domain.rounds.Turn), the task's prompt first."""
    other = twin(letter)
    twin_line = f"[Option {other}]({twin_url})" if twin_url else f"Option {other} (being opened)"
    low, high = rubric.scale
    axes = ", ".join(f"`{axis}`" for axis in rubric.axes)
    return f"""## Task {task_id} · Option {letter}

This draft PR is one of two candidate changes for the same task. Compare it with its twin, {twin_line}.
It will never be merged.

### Prompt

{_conversation(turns)}

### How to judge

1. Review both PRs: read the diffs, leave line comments where something is right or wrong, look at CI.
2. Vote in a comment on either PR: `/prefer A` or `/prefer B` (add `slightly` or `much`), \
`/prefer tie` or `/prefer neither`.
   Everything you write after the command is recorded as your rationale.
3. Optionally score each side on the rubric ({axes}, from {low} to {high}): `/rate A {rubric.axes[0]}={high}`.
4. If the task should go on, write the next prompt with `/followup`.

<details><summary>All commands</summary>

{help_text}

</details>
"""
