"""/rate A correctness=4 security=5: a rater's scores of one side on the repository's rubric.

Each axis is scored on the rubric's scale (1 to 5 by default). A newer score of the same side
and axis replaces the rater's older one in the round; editing the comment edits its scores.
"""

from __future__ import annotations

import re

from tandem.domain import judging
from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import Outcome, command, rubric_fields, words
from tandem.domain.judging import Rubric
from tandem.domain.quoting import code_span
from tandem.domain.vocabulary import SIDES, Role

_SPACED_EQUALS = re.compile(r"\s*=\s*")


def parse_rate(invocation: Invocation, rubric: Rubric) -> tuple[str, dict[str, int]]:
    """(side, {axis: score}) of an invocation of /rate, or a CommandError saying what is wrong."""
    example = str(rubric_fields(rubric)["example"])
    given = words(_SPACED_EQUALS.sub("=", invocation.args))
    if not given:
        raise CommandError(f"say which side and its scores, e.g. `/rate A {example}`")
    side = given[0].upper()
    if side not in SIDES:
        raise CommandError("the side must be A or B")
    if len(given) == 1:
        raise CommandError(
            f"give at least one score, e.g. `/rate {side} {example}`; "
            f"this repository's axes are {', '.join(rubric.axes)}"
        )
    scores: dict[str, int] = {}
    for word in given[1:]:
        axis, equals, value = word.partition("=")
        if not equals or not axis:
            raise CommandError(f"{code_span(word)} is not a score; write axis=score, e.g. `{example.split()[0]}`")
        axis, score = rubric.score(axis, value)
        if axis in scores:
            raise CommandError(f"{axis} is scored twice")
        scores[axis] = score
    return side, scores


def handle_edit(ctx: CommandContext, invocations: list[Invocation]) -> Outcome | None:
    """The comment was edited: the scores its /rate commands now give replace the old ones."""
    scores: dict[str, dict[str, int]] = {}
    for invocation in invocations:
        try:
            side, given = parse_rate(invocation, ctx.rubric)
        except CommandError as error:
            error.command = f"/rate {invocation.args}".rstrip()
            raise
        scores.setdefault(side, {}).update(given)
    ratings, changed = judging.ratings_edited(ctx, scores)
    if not changed:
        return None
    if not ratings:
        return Outcome(f"Retracted @{ctx.comment.author_login}'s scores: the edited comment has no `/rate`.")
    return Outcome(f"Updated @{ctx.comment.author_login}'s scores: {_listed(ratings)}.")


@command(
    "rate",
    role=Role.RATER,
    usage="/rate A {example}",
    summary=(
        "Score one side (A or B) on this repository's axes: {axes}; each score is an integer "
        "from {low} to {high}. Score any of the axes, in one command per side."
    ),
    on_edit=handle_edit,
)
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    side, scores = parse_rate(invocation, ctx.rubric)
    ratings, created = judging.record_ratings(ctx, side, scores)
    what = "Recorded" if created else "Already recorded"
    number = judging.round_number(ctx.session, ratings[0].round_id)
    return Outcome(
        f"{what} @{ctx.comment.author_login}'s scores in round {number}: {_listed(ratings)}.",
        changed=created,
    )


def _listed(ratings) -> str:
    """The scores, each not current (processed out of order, or again) marked as such."""
    return ", ".join(
        f"{rating.side} {rating.axis} {rating.score}" + (" (no longer current)" if rating.superseded_at else "")
        for rating in ratings
    )
