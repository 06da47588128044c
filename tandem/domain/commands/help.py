"""/help: the commands of this repository, generated from the registry."""

from __future__ import annotations

from tandem.domain.commands.context import CommandContext
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import Outcome, command, help_text
from tandem.domain.vocabulary import Role


@command("help", role=Role.ANYONE, usage="/help", summary="This list.", on_edit="ignore")
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    return Outcome(help_text(ctx.rubric), changed=False, reply=True)
