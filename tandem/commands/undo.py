"""/undo: a rater retracts their current vote in the current round."""

from __future__ import annotations

from tandem import judging
from tandem.commands.parser import Invocation
from tandem.commands.registry import Outcome, command, words
from tandem.judging import CommandContext, CommandError, Vote


@command(
    "undo",
    role="rater",
    usage="/undo",
    summary="Retract your vote in the current round (your scores stay). The retracted vote is kept in the history.",
)
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    if words(invocation.args):
        raise CommandError("`/undo` takes nothing after it; it retracts your vote in this round")
    judgment, created = judging._undo(ctx)
    vote = Vote(judgment.verdict, judgment.strength)
    what = "Retracted" if created else "Already retracted"
    number = judging.round_number(ctx.session, judgment.round_id)
    return Outcome(
        f"{what} @{judgment.rater_login}'s vote in round {number}: {vote.describe()}.",
        (judgment,),
        changed=created,
    )
