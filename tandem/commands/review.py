"""/approve [@rater] and /reject [@rater] <reason>: a reviewer's decision on a rater's vote.

The vote is @rater's in the current round, as it stood when the review was written; without
@rater, the only vote in the round still waiting for review. The rest of the line and the lines
under it are the reason, which /reject requires.
"""

from __future__ import annotations

import re

from tandem import judging
from tandem.commands.parser import Invocation
from tandem.commands.registry import TRAILING_PUNCTUATION, Outcome, command
from tandem.judging import CommandContext, CommandError
from tandem.quoting import code_span

# A GitHub login: letters, digits and single hyphens; apps end in "[bot]".
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


def parse_review(invocation: Invocation) -> tuple[str | None, str]:
    """(rater login or None, reason) of an invocation of /approve or /reject."""
    first, _, rest = invocation.args.strip().partition(" ")
    login = None
    if first.startswith("@"):
        login = first[1:].rstrip(TRAILING_PUNCTUATION)
        if not _LOGIN.fullmatch(login):
            raise CommandError(f"{code_span(first)} is not a GitHub login")
    else:
        rest = invocation.args
    reason = "\n".join(part for part in (rest.strip(), invocation.text) if part).strip()
    return login, reason


def _decide(ctx: CommandContext, invocation: Invocation, decision: str) -> Outcome:
    login, reason = parse_review(invocation)
    row, created = judging.review(ctx, decision, login, reason)
    judgment = row.judgment
    verb = "approved" if decision == "approved" else "sent back"
    tail = f": {code_span(reason)}" if decision == "rejected" else ""
    if judgment.superseded_by_id is not None:  # processed after a vote written later than the review
        tail += f" (@{judgment.rater_login} has voted again since)"
    prefix = "" if created else "Already done: "
    number = judging.round_number(ctx.session, judgment.round_id)
    return Outcome(
        f"{prefix}@{row.reviewer_login} {verb} @{judgment.rater_login}'s vote in round {number}{tail}",
        (row,),
        changed=created,
    )


@command(
    "approve",
    role="reviewer",
    usage=("/approve", "/approve @rater"),
    summary="Accept a rater's vote in the current round. Without `@rater`: the one vote waiting for review.",
)
def approve(ctx: CommandContext, invocation: Invocation) -> Outcome:
    return _decide(ctx, invocation, "approved")


@command(
    "reject",
    role="reviewer",
    usage=("/reject <reason>", "/reject @rater <reason>"),
    summary="Send a rater's vote back with a reason (required), which the rater sees; they can then vote again.",
)
def reject(ctx: CommandContext, invocation: Invocation) -> Outcome:
    return _decide(ctx, invocation, "rejected")
