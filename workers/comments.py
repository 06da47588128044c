"""Comments, reviews and line comments on a pair's PRs become judgments, ratings, critiques and
follow-up prompts. Bots (Tandem itself among them) are never heard; who is a rater or reviewer
is asked of the repository's config and of GitHub."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from githubkit import GitHub

from tandem import judging, pairs, queue, repo_config, roles
from tandem.commands import CommandContext, CommentRef, command_names, find_invocations, run_comment
from tandem.commands.near_misses import answers as near_miss_answers
from tandem.commands.near_misses import find_near_misses
from tandem.errors import Unprocessable
from tandem.models import Judgment, Side
from workers import responses
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

router = Router()

def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _side_of(delivery: Delivery, number: Any) -> Side | None:
    repository = delivery.payload.get("repository") or {}
    if not isinstance(number, int) or not repository.get("full_name"):
        return None
    return pairs.side_for_pull_request(delivery.session, repository["full_name"], number)


def _commands(delivery: Delivery, side: Side, author: dict, item: dict, source: str, edited: bool) -> None:
    """Run the commands of a comment or review body, then answer and sync after commit."""
    invocations = find_invocations(item.get("body"), command_names())
    near_misses = find_near_misses(item.get("body"), command_names())
    if not invocations and not near_misses and not edited:
        return
    created_at = _time(item.get("created_at") or item.get("submitted_at"))
    if created_at is None:
        raise Unprocessable(f"{delivery.event} payload: created_at: Field required")
    repo = side.repo_full_name
    installation_id, client, config = _config(delivery, side)
    author_roles = roles.roles_of(delivery.services, client, config, repo.split("/")[0], author["login"])
    comment = CommentRef(
        comment_id=item["id"],
        url=item.get("html_url"),
        delivery_id=delivery.id,
        source=source,
        author_id=author["id"],
        author_login=author["login"],
        created_at=created_at,
        on_side=side.letter,
        edited_at=_time(item.get("updated_at")) if edited else None,
    )
    pair = side.pair
    context = CommandContext.for_pair(delivery.session, pair, comment, rubric=config, started_at=pair.opened_at)
    outcomes = run_comment(context, invocations, roles=author_roles, edited=edited) + near_miss_answers(near_misses)
    delivery.session.flush()
    results = [{"ok": o.ok, "reply": o.reply, "changed": o.changed, "message": o.message} for o in outcomes]
    outsider = author_roles == {roles.ANYONE}
    delivery.enqueue_after_commit(
        queue.PAIRS, responses.acknowledge, installation_id, repo, side.pr_number, source, item["id"],
        author["login"], outsider, results,
    )
    if any(o.changed for o in outcomes):
        delivery.enqueue_after_commit(
            queue.PAIRS, responses.sync_pair, pair.id, coalesce=responses.sync_wanted(pair.id)
        )
    for judgment in {r for o in outcomes if o.changed for r in o.records if isinstance(r, Judgment)}:
        reviewers = judging.resubmitted(delivery.session, judgment) if judgment.superseded_at is None else []
        if reviewers:
            delivery.enqueue_after_commit(
                queue.PAIRS, responses.ask_reviewers_again, installation_id, repo, side.pr_number, reviewers,
                judgment.rater_login, judging.round_number(delivery.session, judgment.round_id), judgment.id,
            )


def _config(delivery: Delivery, side: Side) -> tuple[int, GitHub, repo_config.RepoConfig]:
    """(installation id, its client, the repository's config) of a delivery on a side's PR."""
    installation_id = (delivery.payload.get("installation") or {}).get("id")
    if installation_id is None:  # GitHub sends it with every app webhook: without it, no answer is possible
        raise Unprocessable(f"{delivery.event} payload: installation: Field required")
    client = delivery.services.github.as_installation(installation_id)
    return installation_id, client, repo_config.load(delivery.services, client, side.repo_full_name)


def _human(user: dict | None) -> bool:
    return user is not None and bool(user) and not roles.is_bot(user)


def _edited_by_someone_else(delivery: Delivery, author: dict) -> bool:
    """An edit by anyone but the author (a maintainer, another app) never changes their vote."""
    if delivery.action != "edited":
        return False
    editor = delivery.payload.get("sender") or {}
    return editor.get("id") != author.get("id")


@router.register("issue_comment", "created", "edited")
def issue_comment(delivery: Delivery) -> None:
    issue, comment = delivery.payload.get("issue") or {}, delivery.payload.get("comment") or {}
    if "pull_request" not in issue or not _human(comment.get("user")):
        return
    if _edited_by_someone_else(delivery, comment["user"]):
        log.warning("ignored an edit of comment %s by someone else than its author", comment.get("id"))
        return
    side = _side_of(delivery, issue.get("number"))
    if side is not None:
        _commands(delivery, side, comment["user"], comment, "comment", delivery.action == "edited")


@router.register("issue_comment", "deleted")
def issue_comment_deleted(delivery: Delivery) -> None:
    issue, comment = delivery.payload.get("issue") or {}, delivery.payload.get("comment") or {}
    side = _side_of(delivery, issue.get("number"))
    deleted = side is not None and judging.comment_deleted(
        delivery.session, comment["id"], task_id=side.pair.task_id, delivery_id=delivery.id,
        approvals=_config(delivery, side)[2].review.approvals,
    )
    if side is not None and deleted:
        delivery.enqueue_after_commit(
            queue.PAIRS, responses.sync_pair, side.pair_id, coalesce=responses.sync_wanted(side.pair_id)
        )


@router.register("pull_request_review", "submitted", "edited")
def review_submitted(delivery: Delivery) -> None:
    review = delivery.payload.get("review") or {}
    if not _human(review.get("user")) or _edited_by_someone_else(delivery, review["user"]):
        return
    side = _side_of(delivery, (delivery.payload.get("pull_request") or {}).get("number"))
    if side is not None:
        _commands(delivery, side, review["user"], review, "review", delivery.action == "edited")


@router.register("pull_request_review_comment", "created", "edited")
def line_comment(delivery: Delivery) -> None:
    comment = delivery.payload.get("comment") or {}
    if not _human(comment.get("user")) or _edited_by_someone_else(delivery, comment["user"]):
        return
    side = _side_of(delivery, (delivery.payload.get("pull_request") or {}).get("number"))
    if side is None:
        return
    judging.record_line_comment(
        delivery.session,
        side.pair,
        side.letter,
        comment_id=comment["id"],
        url=comment.get("html_url"),
        delivery_id=delivery.id,
        author_id=comment["user"]["id"],
        author_login=comment["user"]["login"],
        path=comment.get("path") or "",
        body=comment.get("body") or "",
        line=comment.get("line") or comment.get("original_line"),
        start_line=comment.get("start_line"),
        diff_side=comment.get("side"),
        commit_sha=comment.get("commit_id"),
        created_at=_time(comment.get("created_at")),
        updated_at=_time(comment.get("updated_at")),
    )


@router.register("pull_request_review_comment", "deleted")
def line_comment_deleted(delivery: Delivery) -> None:
    comment = delivery.payload.get("comment") or {}
    if _side_of(delivery, (delivery.payload.get("pull_request") or {}).get("number")) is not None:
        judging.delete_line_comment(delivery.session, comment["id"])
