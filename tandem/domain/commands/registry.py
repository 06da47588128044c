"""The command registry, in the style of Prow's plugins.

Each command lives in one module that holds its grammar, its help and its handler, and
registers the handler with ``@command``. ``/help`` is generated from the registry, so it lists
exactly the commands there are, with this repository's rubric in /rate's usage.

A handler takes a CommandContext and an Invocation and returns an Outcome, or raises a
CommandError (or lets the judging rules' Refused through) with a message for the person who
wrote the command; ``run`` turns it into a CommandError and prefixes that message
with the command as written ("`/prefer C`: the side must be A, B, tie or neither").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation
from tandem.domain.judging import FollowupRules, Refused, Rubric
from tandem.domain.vocabulary import Role

ROLES = (Role.RATER, Role.REVIEWER, Role.ANYONE)  # a command's; nobody is only a setting's
_ROLE_TITLES = {Role.RATER: "raters", Role.REVIEWER: "reviewers", Role.ANYONE: "anyone", Role.NOBODY: "nobody"}
# Once a pair is closed its record is final: what raters and reviewers are told when they try.
_CLOSED = {
    Role.RATER: "this task is closed and takes no more votes",
    Role.REVIEWER: "this task is closed; its votes can no longer be reviewed",
}
# Stripped from the end of each word of a command's arguments: "/prefer A." is "/prefer A".
TRAILING_PUNCTUATION = ".,;:!"


@dataclass(frozen=True)
class Outcome:
    """What a command did, for the worker to acknowledge on GitHub."""

    message: str  # Markdown; never names a model
    changed: bool = True  # False: nothing new was written (a replay, or an unchanged edit)
    reply: bool = False  # True: post message as a comment (help, errors); else a reaction will do
    ok: bool = True  # False: the command failed and message says why
    resubmitted: Resubmitted | None = None  # a vote that replaced a returned one, for its reviewers


@dataclass(frozen=True)
class Resubmitted:
    """A rater's vote that replaced one a reviewer returned: who to ask to review it again."""

    judgment_id: int
    rater_login: str
    round_number: int
    reviewers: tuple[str, ...]  # the logins of those who returned it


Handler = Callable[[CommandContext, Invocation], Outcome]
# For an edited comment: all of the command's invocations in the new body (maybe none).
EditHandler = Callable[[CommandContext, list[Invocation]], Outcome | None]


@dataclass(frozen=True)
class Command:
    name: str
    role: Role  # rater, reviewer or anyone
    usage: tuple[str, ...]  # ways to write it; may use {axes}, {example}, {low}, {high}
    summary: str  # what it does, Markdown; may use the same fields
    handler: Handler
    # What an edit of a comment does: "rerun" runs the command again (its handler must be
    # idempotent per comment), "ignore" does nothing, or an EditHandler updates what it recorded.
    on_edit: EditHandler | Literal["rerun", "ignore"] = "rerun"
    # The role set by the repository's `followups.allowed` instead of `role` (/followup only).
    role_from_followups: bool = False

    def role_in(self, rules: FollowupRules) -> Role:
        return rules.role if self.role_from_followups else self.role


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    role: Role,
    usage: str | Sequence[str],
    summary: str,
    on_edit: EditHandler | Literal["rerun", "ignore"] = "rerun",
    role_from_followups: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``/name``."""
    if role not in ROLES:
        raise ValueError(f"/{name}: role must be one of {', '.join(ROLES)}")

    def decorator(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"/{name} is registered twice")
        usages = (usage,) if isinstance(usage, str) else tuple(usage)
        COMMANDS[name] = Command(name, role, usages, summary, handler, on_edit, role_from_followups)
        return handler

    return decorator


def command_names() -> list[str]:
    """The names to look for in a comment (tandem.domain.commands.find_invocations)."""
    return list(COMMANDS)


def words(args: str) -> list[str]:
    """The whitespace-separated words of ``args``, each without trailing punctuation."""
    stripped = (word.rstrip(TRAILING_PUNCTUATION) for word in args.split())
    return [word for word in stripped if word]


def written(invocation: Invocation) -> str:
    """The command as its author wrote it, for error messages (long arguments are cut)."""
    args = invocation.args if len(invocation.args) <= 60 else invocation.args[:59].rstrip() + "…"
    return f"/{invocation.name} {args}".rstrip()


def run(ctx: CommandContext, invocation: Invocation, *, roles: Collection[str] | None = None) -> Outcome:
    """Run one command. ``roles``: what the author is (tandem.domain.roles.roles_of); None skips the check.

    Raises CommandError, its message prefixed with the command as written.
    """
    try:
        entry = _entry(invocation.name)
        _check_allowed(ctx, entry, roles)
        return entry.handler(ctx, invocation)
    except Refused as refused:
        raise CommandError.of(refused, written(invocation)) from refused


def run_comment(
    ctx: CommandContext,
    invocations: Sequence[Invocation],
    *,
    roles: Collection[str] | None = None,
    edited: bool = False,
) -> list[Outcome]:
    """Run every command of a comment; a failed command gives an Outcome with ok=False.

    For a new comment the commands run in order. For an edited one (``edited=True``, and
    ctx.comment.edited_at set) the commands that record a state, /prefer and /rate, update what
    the comment recorded to match its new body (removing a /prefer retracts the vote), the other
    commands run again (they are idempotent per comment, so only new ones take effect), and
    /help is not answered again.
    """
    outcomes = []
    if edited:
        for registered in COMMANDS.values():
            if callable(registered.on_edit):
                mine = [i for i in invocations if i.name == registered.name]
                outcomes += _attempt(ctx, registered, mine, roles)
    for invocation in invocations:
        entry = COMMANDS.get(invocation.name)
        if edited and entry is not None and entry.on_edit != "rerun":
            continue
        try:
            outcomes.append(run(ctx, invocation, roles=roles))
        except CommandError as error:
            outcomes.append(_failure(error))
    return outcomes


def _attempt(
    ctx: CommandContext, entry: Command, invocations: list[Invocation], roles: Collection[str] | None
) -> list[Outcome]:
    try:
        if invocations:
            _check_allowed(ctx, entry, roles)
        elif ctx.pair.closed_at is not None and entry.role != Role.ANYONE:
            return []
        outcome = entry.on_edit(ctx, invocations)  # type: ignore[operator]
        return [outcome] if outcome is not None else []
    except Refused as refused:
        return [_failure(CommandError.of(refused, written(invocations[-1]) if invocations else f"/{entry.name}"))]


def _failure(error: CommandError) -> Outcome:
    return Outcome(str(error), changed=False, reply=True, ok=False)


def _entry(name: str) -> Command:
    entry = COMMANDS.get(name.lower())
    if entry is None:
        raise CommandError("there is no such command; `/help` lists them")
    return entry


def _check_allowed(ctx: CommandContext, entry: Command, roles: Collection[str] | None) -> None:
    role = entry.role_in(ctx.followups)
    if role == Role.NOBODY:
        raise CommandError(f"`/{entry.name}` is turned off in this repository (`followups.allowed: nobody`)")
    if roles is not None and role != Role.ANYONE and role not in roles:
        raise CommandError(f"only {_ROLE_TITLES[role]} can use `/{entry.name}`")
    if ctx.pair.closed_at is not None and entry.role != Role.ANYONE:
        raise CommandError(_CLOSED[entry.role])


def rubric_fields(rubric: Rubric) -> dict[str, str | int]:
    """The fields usage and summary texts may use, for a rubric."""
    low, high = rubric.scale
    example = " ".join(f"{axis}={max(low, high - 1 + i)}" for i, axis in enumerate(rubric.axes[:2]))
    return {"axes": ", ".join(rubric.axes), "example": example, "low": low, "high": high}


def help_text(config: Any = None) -> str:
    """The Markdown list of commands for a repository.

    ``config``: its RepoConfig, its rubric, or a Rubric (see ``Rubric.of``); None: the defaults.
    """
    fields = rubric_fields(Rubric.of(config))
    rows = [
        "| Command | Who | What it does |",
        "| --- | --- | --- |",
    ]
    for entry in COMMANDS.values():
        usage = " · ".join(f"`{u.format(**fields)}`" for u in entry.usage)
        role = entry.role_in(FollowupRules.of(config))
        rows.append(f"| {usage} | {_ROLE_TITLES[role]} | {entry.summary.format(**fields)} |")
    return "\n".join(
        [
            "**Tandem commands**",
            "",
            "Write a command at the start of a line of a comment on either pull request; the lines "
            "under it, up to the next command, are its text (your rationale, prompt or reason). "
            "Commands are not read in quotes (lines starting with `>`, and a line right after a "
            "quoted line with no blank line between), list items or code; Tandem tells you when "
            "it skipped one.",
            "",
            *rows,
        ]
    )
