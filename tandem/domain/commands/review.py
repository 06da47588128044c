"""/approve [@rater] and /reject [@rater] <reason>: a reviewer's decision on a rater's vote.

The vote is @rater's in the current round, as it stood when the review was written; without
@rater, the only vote in the round still waiting for the reviewer. The rest of the line and the
lines under it are the reason, which /reject requires: a rejected vote is returned to its rater,
who is told why on the PR, and their next vote resubmits it.
"""

from __future__ import annotations

from tandem.domain import judging
from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import TRAILING_PUNCTUATION, Outcome, command
from tandem.domain.quoting import code_span
from tandem.domain.vocabulary import LOGIN, ReviewDecision, ReviewState, Role


def parse_review(invocation: Invocation) -> tuple[str | None, str]:
    """(rater login or None, reason) of an invocation of /approve or /reject."""
    first, _, rest = invocation.args.strip().partition(" ")
    login = None
    if first.startswith("@"):
        login = first[1:].rstrip(TRAILING_PUNCTUATION)
        if not LOGIN.fullmatch(login):
            raise CommandError(f"{code_span(first)} is not a GitHub login")
    else:
        rest = invocation.args
    reason = "\n".join(part for part in (rest.strip(), invocation.text) if part).strip()
    return login, reason


def _decide(ctx: CommandContext, invocation: Invocation, decision: ReviewDecision) -> Outcome:
    login, reason = parse_review(invocation)
    row, created = judging.review(ctx, decision, login, reason)
    judgment = row.judgment
    returned = decision == ReviewDecision.REJECTED
    verb = "sent back" if returned else "approved"
    tail = f": {code_span(reason)}" if returned else ""
    if judgment.superseded_by_id is not None:  # processed after a vote written later than the review
        tail += f" (@{judgment.rater_login} has voted again since)"
    elif judgment.review_state == ReviewState.PENDING and created:
        tail += f"; it needs {ctx.review.approvals} approvals"
    prefix = "" if created else "Already done: "
    number = judging.round_number(ctx.session, judgment.round_id)
    message = f"{prefix}@{row.reviewer_login} {verb} @{judgment.rater_login}'s vote in round {number}{tail}"
    # A vote sent back is the rater's to redo: they are mentioned, with the reason, on the PR.
    told = returned and created and judgment.superseded_by_id is None
    if told:
        message += (
            f". @{judgment.rater_login}, vote again with `/prefer` (or edit your vote) to resubmit it for review."
        )
    return Outcome(message, changed=created, reply=told)


@command(
    "approve",
    role=Role.REVIEWER,
    usage=("/approve", "/approve @rater"),
    summary="Accept a rater's vote in the current round. Without `@rater`: the one vote waiting for review.",
)
def approve(ctx: CommandContext, invocation: Invocation) -> Outcome:
    return _decide(ctx, invocation, ReviewDecision.APPROVED)


@command(
    "reject",
    role=Role.REVIEWER,
    usage=("/reject <reason>", "/reject @rater <reason>"),
    summary=(
        "Return a rater's vote to them with a reason (required), which they are told; their next vote "
        "(or an edit of it) resubmits it for review."
    ),
)
def reject(ctx: CommandContext, invocation: Invocation) -> Outcome:
    return _decide(ctx, invocation, ReviewDecision.REJECTED)
