"""Comments, reviews and line comments on a pair's PRs become judgments, ratings, critiques and
follow-up prompts. Bots (Tandem itself among them) are never heard; who is a rater or reviewer
is asked of the repository's config and of GitHub, before the delivery's transaction opens (an
answer may wait seconds on a rate limit; a transaction must not wait with it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tandem.domain import judging, pairs, repo_config, roles
from tandem.domain.commands import CommandContext, CommentRef, command_names, find_invocations, run_comment
from tandem.domain.commands.near_misses import answers as near_miss_answers
from tandem.domain.commands.near_misses import find_near_misses
from tandem.domain.vocabulary import Role
from tandem.domain.webhook_payloads import (
    Comment,
    Event,
    IssueCommentEvent,
    LineCommentEvent,
    Review,
    ReviewEvent,
    User,
    narrow,
)
from tandem.infra import job_names, logs, queue, redis_keys
from tandem.infra.errors import Unprocessable
from tandem.infra.models import Judgment, Side
from tandem.infra.services import Services
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

router = Router()


@dataclass(frozen=True)
class Asked:
    """What a handler needs of GitHub: asked before the delivery's transaction (Router.register)."""

    installation_id: int
    config: repo_config.RepoConfig
    author_roles: set[Role] | None = None  # (for a comment's commands)


def _side_of(delivery: Delivery, number: int) -> Side | None:
    if not delivery.payload.repo:
        return None
    side = pairs.side_for_pull_request(delivery.session, delivery.payload.repo, number, with_pair=True)
    if side is not None:
        logs.bind(task_id=side.pair.task_id)
    return side


def _ask(services: Services, payload: Event, number: int, author: str | None = None) -> Asked | None:
    """The config of the repository of a side's PR (and the roles of `author` in it), asked of
    GitHub; None if the PR is no side's (a short transaction of its own looks)."""
    if not payload.repo:
        return None
    with services.storage.transaction() as session:
        side = pairs.side_for_pull_request(session, payload.repo, number)
        repo = side.repo_full_name if side is not None else None
    return _ask_repo(services, payload, repo, author) if repo is not None else None


def _ask_repo(services: Services, payload: Event, repo: str, author: str | None) -> Asked:
    if payload.installation is None:  # GitHub sends it with every app webhook: without it, no answer is possible
        raise Unprocessable("payload: installation: Field required")
    client = services.github.as_installation(payload.installation.id)
    config = repo_config.load(services, client, repo)
    author_roles = roles.roles_of(services, client, config, repo.split("/")[0], author) if author else None
    return Asked(payload.installation.id, config, author_roles)


def _asked(delivery: Delivery, side: Side, author: str | None = None) -> Asked:
    """The resolver's answers; asked now only if the PR became a side's since (a rare race)."""
    return delivery.resolved or _ask_repo(delivery.services, delivery.payload, side.repo_full_name, author)


def _has_commands(item: Comment | Review, edited: bool) -> bool:
    """Whether _commands has anything to do (and so to ask GitHub)."""
    return edited or bool(find_invocations(item.body, command_names()) or find_near_misses(item.body, command_names()))


def _commands(delivery: Delivery, side: Side, item: Comment | Review, source: str, edited: bool) -> None:
    """Run the commands of a comment or review body, then answer and sync after commit."""
    invocations = find_invocations(item.body, command_names())
    near_misses = find_near_misses(item.body, command_names())
    if not invocations and not near_misses and not edited:
        return
    written_at = item.written_at
    if written_at is None:  # only a pending review has none, and GitHub tells no one of those
        raise Unprocessable("malformed pull_request_review payload: review.submitted_at: Field required")
    author = item.user
    repo = side.repo_full_name
    asked = _asked(delivery, side, author.login)
    installation_id, config, author_roles = asked.installation_id, asked.config, asked.author_roles
    comment = CommentRef(
        comment_id=item.id,
        url=item.html_url,
        delivery_id=delivery.id,
        source=source,
        author_id=author.id,
        author_login=author.login,
        created_at=written_at,
        on_side=side.letter,
        edited_at=item.updated_at if edited else None,
    )
    pair = side.pair
    context = CommandContext.for_pair(delivery.session, pair, comment, rubric=config, started_at=pair.opened_at)
    outcomes = run_comment(context, invocations, roles=author_roles, edited=edited) + near_miss_answers(near_misses)
    delivery.session.flush()
    results = [{"ok": o.ok, "reply": o.reply, "changed": o.changed, "message": o.message} for o in outcomes]
    outsider = author_roles == {Role.ANYONE}
    delivery.enqueue_after_commit(
        queue.PAIRS,
        job_names.ACKNOWLEDGE_WAITING,
        coalesce=redis_keys.acknowledgments(installation_id),
        installation_id=installation_id,
        repo=repo,
        pr_number=side.pr_number,
        source=source,
        source_id=item.id,
        author=author.login,
        outsider=outsider,
        results=results,
    )
    if any(o.changed for o in outcomes):
        delivery.enqueue_after_commit(
            queue.PAIRS, job_names.SYNC_PAIR, pair_id=pair.id, coalesce=redis_keys.pair_sync(pair.id)
        )
    resubmitted = {o.resubmitted for o in outcomes if o.changed and o.resubmitted is not None}
    # Only a vote that still stands once the whole comment is read (a later /undo or /prefer in the
    # same comment supersedes it): reviewers are not asked about a vote that is gone.
    standing = {
        again for again in resubmitted if delivery.session.get_one(Judgment, again.judgment_id).superseded_at is None
    }
    for again in standing:
        delivery.enqueue_after_commit(
            queue.PAIRS,
            job_names.ASK_REVIEWERS_AGAIN,
            installation_id=installation_id,
            repo=repo,
            pr_number=side.pr_number,
            reviewers=list(again.reviewers),
            rater=again.rater_login,
            round_number=again.round_number,
            judgment_id=again.judgment_id,
        )


def _human(user: User) -> bool:
    return not user.is_bot


def _edited_by_someone_else(action: str | None, payload: Event, author: User) -> bool:
    """An edit by anyone but the author (a maintainer, another app) never changes their vote."""
    if action != "edited":
        return False
    return (payload.sender.id if payload.sender is not None else None) != author.id


def _heard_comment(action: str | None, payload: IssueCommentEvent, say: bool = False) -> Comment | None:
    """The comment, if it is a human's on a PR, and no one else's edit of it."""
    issue, comment = payload.issue, payload.comment
    if "pull_request" not in issue.model_fields_set or not _human(comment.user):
        return None
    if _edited_by_someone_else(action, payload, comment.user):
        if say:
            log.warning("ignored an edit of comment %s by someone else than its author", comment.id)
        return None
    return comment


def _heard_review(action: str | None, payload: ReviewEvent) -> Review | None:
    review = payload.review
    return review if _human(review.user) and not _edited_by_someone_else(action, payload, review.user) else None


def _resolve_comment(services: Services, action: str | None, payload: Event) -> Asked | None:
    event = narrow(payload, IssueCommentEvent)
    comment = _heard_comment(action, event)
    if comment is None or not _has_commands(comment, action == "edited"):
        return None
    return _ask(services, event, event.issue.number, comment.user.login)


def _resolve_deleted(services: Services, action: str | None, payload: Event) -> Asked | None:
    return _ask(services, payload, narrow(payload, IssueCommentEvent).issue.number)


def _resolve_review(services: Services, action: str | None, payload: Event) -> Asked | None:
    event = narrow(payload, ReviewEvent)
    review = _heard_review(action, event)
    if review is None or not _has_commands(review, action == "edited"):
        return None
    return _ask(services, event, event.pull_request.number, review.user.login)


@router.register("issue_comment", "created", "edited", resolve=_resolve_comment)
def issue_comment(delivery: Delivery) -> None:
    payload = delivery.payload_as(IssueCommentEvent)
    comment = _heard_comment(delivery.action, payload, say=True)
    side = _side_of(delivery, payload.issue.number) if comment is not None else None
    if comment is not None and side is not None:
        _commands(delivery, side, comment, "comment", delivery.action == "edited")


@router.register("issue_comment", "deleted", resolve=_resolve_deleted)
def issue_comment_deleted(delivery: Delivery) -> None:
    payload = delivery.payload_as(IssueCommentEvent)
    side = _side_of(delivery, payload.issue.number)
    deleted = side is not None and judging.comment_deleted(
        delivery.session,
        payload.comment.id,
        task_id=side.pair.task_id,
        delivery_id=delivery.id,
        approvals=_asked(delivery, side).config.review.approvals,
    )
    if side is not None and deleted:
        delivery.enqueue_after_commit(
            queue.PAIRS, job_names.SYNC_PAIR, pair_id=side.pair_id, coalesce=redis_keys.pair_sync(side.pair_id)
        )


@router.register("pull_request_review", "submitted", "edited", resolve=_resolve_review)
def review_submitted(delivery: Delivery) -> None:
    payload = delivery.payload_as(ReviewEvent)
    review = _heard_review(delivery.action, payload)
    side = _side_of(delivery, payload.pull_request.number) if review is not None else None
    if review is not None and side is not None:
        _commands(delivery, side, review, "review", delivery.action == "edited")


@router.register("pull_request_review_comment", "created", "edited")
def line_comment(delivery: Delivery) -> None:
    payload = delivery.payload_as(LineCommentEvent)
    comment = payload.comment
    if not _human(comment.user) or _edited_by_someone_else(delivery.action, payload, comment.user):
        return
    side = _side_of(delivery, payload.pull_request.number)
    if side is None:
        return
    judging.record_line_comment(
        delivery.session,
        side.pair,
        side.letter,
        comment_id=comment.id,
        url=comment.html_url,
        delivery_id=delivery.id,
        author_id=comment.user.id,
        author_login=comment.user.login,
        path=comment.path or "",
        body=comment.body or "",
        line=comment.line or comment.original_line,
        start_line=comment.start_line,
        diff_side=comment.side,
        commit_sha=comment.commit_id,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
    )


@router.register("pull_request_review_comment", "deleted")
def line_comment_deleted(delivery: Delivery) -> None:
    payload = delivery.payload_as(LineCommentEvent)
    if _side_of(delivery, payload.pull_request.number) is not None:
        judging.delete_line_comment(delivery.session, payload.comment.id)
