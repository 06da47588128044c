"""/followup <prompt>: a follow-up prompt for both models, which starts the next round.

The prompt is the rest of the command's line and the lines under it, up to the next command.
"""

from __future__ import annotations

from tandem.domain import judging
from tandem.domain.commands.context import CommandContext
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import Outcome, command
from tandem.domain.vocabulary import Role


def prompt_of(invocation: Invocation) -> str:
    return "\n".join(part for part in (invocation.args, invocation.text) if part).strip()


@command(
    "followup",
    role=Role.RATER,
    role_from_followups=True,
    usage="/followup <prompt>",
    summary=(
        "Ask both models a follow-up: the rest of the line and the lines under it are the prompt. "
        "It starts the next round: both PRs get the models' answers as a new commit, and it is judged afresh. "
        "One round at a time, up to the repository's `followups.max_rounds`."
    ),
)
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    round_, created = judging.record_followup(ctx, prompt_of(invocation))
    what = "started" if created else "was already started"
    return Outcome(
        f"Round {round_.number} {what} with @{round_.author_login}'s follow-up prompt; "
        "it opens once both models have answered.",
        changed=created,
    )
