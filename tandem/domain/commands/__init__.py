"""Slash commands that raters and reviewers write in pull request comments.

Each command is one module (grammar, help and handler together) registered in
``registry.COMMANDS``; importing this package registers them all, in the order /help lists them.

The worker's use, for an issue comment (or review body) created or edited::

    invocations = find_invocations(body, command_names())
    ctx = CommandContext.for_pair(session, pair, comment_ref, rubric=repo_config, started_at=...)
    outcomes = run_comment(ctx, invocations, roles=roles_of(...), edited=action == "edited")

and ``judging.comment_deleted(session, comment_id, task_id=...)`` when one is deleted. Each
Outcome says whether to reply (``reply``: help and errors) or just acknowledge. Lines that look
like a command but are not read (a typo, a list item, a line swallowed by a quote) are answered
too: ``near_misses.answers(near_misses.find_near_misses(body, command_names()))``.
"""

import importlib

from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation, find_invocations
from tandem.domain.commands.registry import (
    COMMANDS,
    Command,
    Outcome,
    command,
    command_names,
    help_text,
    run,
    run_comment,
)
from tandem.domain.judging import CommentRef, Rubric

# Importing a command's module registers it; /help lists the commands in this order.
for _module in ("prefer", "rate", "followup", "undo", "review", "help"):
    importlib.import_module(f"tandem.domain.commands.{_module}")

__all__ = [
    "COMMANDS",
    "Command",
    "CommandContext",
    "CommandError",
    "CommentRef",
    "Invocation",
    "Outcome",
    "Rubric",
    "command",
    "command_names",
    "find_invocations",
    "help_text",
    "run",
    "run_comment",
]
