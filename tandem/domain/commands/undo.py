"""/undo: a rater retracts their vote in the current round, as it stood when they wrote /undo."""

from __future__ import annotations

from tandem.domain import judging
from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import Outcome, command, words
from tandem.domain.judging import Vote
from tandem.domain.vocabulary import Role
from tandem.infra.models import Judgment


@command(
    "undo",
    role=Role.RATER,
    usage="/undo",
    summary="Retract your vote in the current round (your scores stay). The retracted vote is kept in the history.",
)
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    if words(invocation.args):
        raise CommandError("`/undo` takes nothing after it; it retracts your vote in this round")
    judgment, created = judging.undo(ctx)
    what = "Retracted" if created else "Already retracted"
    number = judging.round_number(ctx.session, judgment.round_id)
    # A vote written after the /undo (processed before it) stands.
    later = judging.current_judgment(ctx.session, judgment.round_id, judgment.rater_id)
    tail = f" Your vote written after it, {_described(later)}, stands." if later is not None else ""
    return Outcome(
        f"{what} @{judgment.rater_login}'s vote in round {number}: {_described(judgment)}.{tail}",
        changed=created,
    )


def _described(judgment: Judgment) -> str:
    return Vote(judgment.verdict, judgment.strength).describe()
