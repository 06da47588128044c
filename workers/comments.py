"""Comments, reviews and line comments on a pair's PRs become judgments, ratings, critiques and
follow-up prompts. Bots (Tandem itself among them) are never heard; who is a rater or reviewer
is asked of the repository's config and of GitHub."""

from __future__ import annotations

import logging

from githubkit import GitHub

from tandem import job_names, judging, pairs, queue, redis_keys, repo_config, roles
from tandem.commands import CommandContext, CommentRef, command_names, find_invocations, run_comment
from tandem.commands.near_misses import answers as near_miss_answers
from tandem.commands.near_misses import find_near_misses
from tandem.errors import Unprocessable
from tandem.models import Judgment, Side
from tandem.webhook_payloads import Comment, IssueCommentEvent, LineCommentEvent, ReviewEvent, User
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

router = Router()


def _side_of(delivery: Delivery, number: int | None) -> Side | None:
    if number is None or not delivery.payload.repo:
        return None
    return pairs.side_for_pull_request(delivery.session, delivery.payload.repo, number)


def _commands(delivery: Delivery, side: Side, author: User, item: Comment, source: str, edited: bool) -> None:
    """Run the commands of a comment or review body, then answer and sync after commit."""
    invocations = find_invocations(item.body, command_names())
    near_misses = find_near_misses(item.body, command_names())
    if not invocations and not near_misses and not edited:
        return
    repo = side.repo_full_name
    installation_id, client, config = _config(delivery, side)
    author_roles = roles.roles_of(delivery.services, client, config, repo.split("/")[0], author.login)
    comment = CommentRef(
        comment_id=item.id,
        url=item.html_url,
        delivery_id=delivery.id,
        source=source,
        author_id=author.id,
        author_login=author.login,
        created_at=item.written_at,
        on_side=side.letter,
        edited_at=item.updated_at if edited else None,
    )

    pair = side.pair
    context = CommandContext.for_pair(delivery.session, pair, comment, rubric=config, started_at=pair.opened_at)
    outcomes = run_comment(context, invocations, roles=author_roles, edited=edited) + near_miss_answers(near_misses)
    delivery.session.flush()
    results = [{"ok": o.ok, "reply": o.reply, "changed": o.changed, "message": o.message} for o in outcomes]
    outsider = author_roles == {roles.ANYONE}
    delivery.enqueue_after_commit(
        queue.PAIRS, job_names.ACKNOWLEDGE, installation_id=installation_id, repo=repo, pr_number=side.pr_number,
        source=source, source_id=item.id, author=author.login, outsider=outsider, results=results,
    )
    if any(o.changed for o in outcomes):
        delivery.enqueue_after_commit(
            queue.PAIRS, job_names.SYNC_PAIR, pair_id=pair.id, coalesce=redis_keys.pair_sync(pair.id)
        )
    for judgment in {r for o in outcomes if o.changed for r in o.records if isinstance(r, Judgment)}:
        reviewers = judging.resubmitted(delivery.session, judgment) if judgment.superseded_at is None else []
        if reviewers:
            delivery.enqueue_after_commit(
                queue.PAIRS, job_names.ASK_REVIEWERS_AGAIN, installation_id=installation_id, repo=repo,
                pr_number=side.pr_number, reviewers=reviewers, rater=judgment.rater_login,
                round_number=judging.round_number(delivery.session, judgment.round_id), judgment_id=judgment.id,
            )


def _config(delivery: Delivery, side: Side) -> tuple[int, GitHub, repo_config.RepoConfig]:
    """(installation id, its client, the repository's config) of a delivery on a side's PR."""
    if delivery.payload.installation is None:  # GitHub sends it with every app webhook: without it, no answer is possible
        raise Unprocessable(f"{delivery.event} payload: installation: Field required")
    installation_id = delivery.payload.installation.id
    client = delivery.services.github.as_installation(installation_id)
    return installation_id, client, repo_config.load(delivery.services, client, side.repo_full_name)


def _human(user: User | None) -> bool:
    return user is not None and not user.is_bot


def _edited_by_someone_else(delivery: Delivery, author: User) -> bool:
    """An edit by anyone but the author (a maintainer, another app) never changes their vote."""
    if delivery.action != "edited":
        return False
    editor = delivery.payload.sender
    return (editor.id if editor is not None else None) != author.id


@router.register("issue_comment", "created", "edited")
def issue_comment(delivery: Delivery) -> None:
    payload: IssueCommentEvent = delivery.payload
    issue, comment = payload.issue, payload.comment
    if issue is None or "pull_request" not in issue.model_fields_set or not _human(comment.user):
        return
    if _edited_by_someone_else(delivery, comment.user):
        log.warning("ignored an edit of comment %s by someone else than its author", comment.id)
        return
    side = _side_of(delivery, issue.number)
    if side is not None:
        _commands(delivery, side, comment.user, comment, "comment", delivery.action == "edited")


@router.register("issue_comment", "deleted")
def issue_comment_deleted(delivery: Delivery) -> None:
    payload: IssueCommentEvent = delivery.payload
    side = _side_of(delivery, payload.issue.number if payload.issue else None)
    deleted = side is not None and judging.comment_deleted(
        delivery.session, payload.comment.id, task_id=side.pair.task_id, delivery_id=delivery.id,
        approvals=_config(delivery, side)[2].review.approvals,
    )
    if deleted:
        delivery.enqueue_after_commit(
            queue.PAIRS, job_names.SYNC_PAIR, pair_id=side.pair_id, coalesce=redis_keys.pair_sync(side.pair_id)
        )


@router.register("pull_request_review", "submitted", "edited")
def review_submitted(delivery: Delivery) -> None:
    payload: ReviewEvent = delivery.payload
    review = payload.review
    if not _human(review.user) or _edited_by_someone_else(delivery, review.user):
        return
    side = _side_of(delivery, payload.pull_request.number if payload.pull_request else None)
    if side is not None:
        _commands(delivery, side, review.user, review, "review", delivery.action == "edited")


@router.register("pull_request_review_comment", "created", "edited")
def line_comment(delivery: Delivery) -> None:
    payload: LineCommentEvent = delivery.payload
    comment = payload.comment
    if not _human(comment.user) or _edited_by_someone_else(delivery, comment.user):
        return
    side = _side_of(delivery, payload.pull_request.number if payload.pull_request else None)
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
    payload: LineCommentEvent = delivery.payload
    if _side_of(delivery, payload.pull_request.number if payload.pull_request else None) is not None:
        judging.delete_line_comment(delivery.session, payload.comment.id)
