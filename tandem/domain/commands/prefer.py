"""/prefer A|B [slightly|clearly|much], /prefer tie, /prefer neither: a rater's vote.

The lines under the command, up to the next command, are the rationale. One vote per rater and
round is current, the one written last: a new one supersedes the old, and editing the comment
edits the vote.
"""

from __future__ import annotations

from tandem.domain import judging
from tandem.domain.commands.context import CommandContext, CommandError
from tandem.domain.commands.parser import Invocation
from tandem.domain.commands.registry import Outcome, Resubmitted, command, words
from tandem.domain.judging import Vote
from tandem.domain.vocabulary import Role, Strength, Verdict
from tandem.infra.errors import known
from tandem.infra.models import Judgment


def parse_prefer(invocation: Invocation) -> Vote:
    """The vote an invocation of /prefer casts, or a CommandError saying what is wrong."""
    given = words(invocation.args)
    if not given:
        raise CommandError("say which side is better: `/prefer A`, `/prefer B`, `/prefer tie` or `/prefer neither`")
    verdict = Verdict.parse(given[0])
    if verdict is None:
        raise CommandError("the side must be A, B, tie or neither")
    rest = [word.lower() for word in given[1:]]
    if verdict in (Verdict.TIE, Verdict.NEITHER):
        if rest and rest[0] in tuple(Strength):
            raise CommandError(f"`/prefer {verdict}` takes no strength")
        if rest:
            raise CommandError(f"write `/prefer {verdict}` alone on its line; put your reasons on the lines below")
        return Vote(verdict, None, invocation.text)
    if rest and rest[0] not in tuple(Strength):
        raise CommandError("the strength must be slightly, clearly or much; put your reasons on the lines below")
    if len(rest) > 1:
        raise CommandError(
            f"write the side and the strength only, e.g. `/prefer {verdict} {rest[0]}`; "
            "put your reasons on the lines below"
        )
    return Vote(verdict, Strength(rest[0]) if rest else None, invocation.text)


def handle_edit(ctx: CommandContext, invocations: list[Invocation]) -> Outcome | None:
    """The comment was edited: its last /prefer (if any) is now the comment's vote."""
    vote = parse_prefer(invocations[-1]) if invocations else None
    judgment, changed = judging.record_judgment(ctx, vote)
    if not changed:
        return None
    if judgment is None or vote is None:  # no vote: the judgment was retracted
        later = judging.current_judgment(ctx.session, judging.round_of_comment(ctx).id, ctx.comment.author_id)
        tail = " A vote written after it stands." if later is not None else ""
        return Outcome(f"Retracted @{ctx.comment.author_login}'s vote: the edited comment has no `/prefer`.{tail}")
    return _recorded(ctx, f"Updated @{ctx.comment.author_login}'s vote: {vote.describe()}.", judgment, True)


def _recorded(ctx: CommandContext, message: str, judgment: Judgment, changed: bool) -> Outcome:
    """The outcome of a vote recorded (or found again): whether it stands, and whether it was
    resubmitted for review, replacing a vote a reviewer returned."""
    again = None
    if judgment.superseded_at is None and (reviewers := judging.resubmitted(ctx.session, judgment)):
        number = judging.round_number(ctx.session, judgment.round_id)
        again = Resubmitted(judgment.id, judgment.rater_login, number, tuple(reviewers))
    tail = " Resubmitted for review." if again else ""
    return Outcome(f"{message}{_standing(judgment)}{tail}", changed=changed, resubmitted=again)


def _standing(judgment: Judgment) -> str:
    """What to add when the vote is not current: a vote processed out of order, or again."""
    if judgment.superseded_at is None:
        return ""
    if judgment.superseded_by_id is not None:
        return " A vote written after it stands."
    return " It has been retracted since."


@command(
    "prefer",
    role=Role.RATER,
    usage=("/prefer A", "/prefer B", "/prefer tie", "/prefer neither"),
    summary=(
        "Your vote: A (or B) is better, by `slightly`, `clearly` (the default) or `much`, e.g. "
        "`/prefer A much`; `tie`: both are equally good; `neither`: both are unacceptable. "
        "The lines under it are your rationale. A new vote replaces your previous one in this round."
    ),
    on_edit=handle_edit,
)
def handle(ctx: CommandContext, invocation: Invocation) -> Outcome:
    vote = parse_prefer(invocation)
    recorded, created = judging.record_judgment(ctx, vote)
    judgment = known(recorded, "the judgment of a vote just recorded")
    what = "Recorded" if created else "Already recorded"
    number = judging.round_number(ctx.session, judgment.round_id)
    return _recorded(
        ctx, f"{what} @{ctx.comment.author_login}'s vote in round {number}: {vote.describe()}.", judgment, created
    )
