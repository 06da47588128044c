"""Pull requests, requested reviewers, reviews, review comments, changed files."""

from __future__ import annotations

from .. import errors
from ..api import Ctx, Reply, handler
from ..state import Issue, Repository, Review, ReviewComment
from ..util import q


@handler("pulls/list")
def list_pulls(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    state = ctx.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise errors.invalid_field("PullRequest", "state")
    head, base = ctx.query.get("head"), ctx.query.get("base")
    sort = ctx.query.get("sort", "created")
    direction = ctx.query.get("direction") or ("desc" if sort == "created" else "asc")
    with ctx.state.lock:
        pulls = [i for i in repo.issues.values() if i.pr is not None and (state == "all" or i.state == state)]
        if head:
            owner, _, branch = head.partition(":")
            if not branch:  # GitHub wants user:ref-name; a bare name matches nothing
                pulls = []
            else:
                pulls = [
                    i
                    for i in pulls
                    if i.pull_request.head_repo.owner.login.lower() == owner.lower()
                    and i.pull_request.head_ref == branch
                ]
        if base:
            pulls = [i for i in pulls if i.pull_request.base_ref == base]
        key = {
            "created": lambda i: (i.created_at, i.number),
            "updated": lambda i: (i.updated_at, i.number),
            "popularity": lambda i: (i.comment_count, i.number),
            "long-running": lambda i: (i.created_at, i.number),
        }.get(sort, lambda i: i.number)
        pulls.sort(key=key, reverse=direction == "desc")
        page, headers = ctx.paginate(pulls)
        return Reply(200, [ctx.views.pull(i, ctx.snap, full=False) for i in page], headers)


@handler("pulls/create")
def create_pull(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    if body.get("issue") is not None:
        raise errors.validation(
            message="Converting an issue into a pull request is not supported by the GitHub emulator"
        )
    issue = ctx.domain.create_pull(
        repo,
        ctx.actor,
        ctx.via_app,
        title=body.get("title"),
        head=body.get("head"),
        base=body.get("base"),
        body=body.get("body"),
        draft=bool(body.get("draft", False)),
        maintainer_can_modify=bool(body.get("maintainer_can_modify", True)),
        head_repo=body.get("head_repo"),
    )
    with ctx.state.lock:
        value = ctx.views.pull(issue, ctx.snap)
    return Reply(201, value, {"location": value["url"]})


@handler("pulls/get")
def get_pull(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        issue = ctx.pull(repo, ctx.params["pull_number"])
        return Reply(200, ctx.views.pull(issue, ctx.snap))


@handler("pulls/update")
def update_pull(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    body = ctx.body_dict
    if "title" in body and not body["title"]:
        raise errors.missing_field("PullRequest", "title")
    # ``draft`` is not a field of this endpoint on GitHub (it is ignored there
    # too); use UserActions.mark_ready_for_review / convert_to_draft.
    ctx.domain.update_issue(
        issue,
        ctx.actor,
        ctx.via_app,
        title=body.get("title"),
        body=body.get("body", ...),
        state=body.get("state"),
        base=body.get("base"),
        maintainer_can_modify=body.get("maintainer_can_modify"),
    )
    with ctx.state.lock:
        return Reply(200, ctx.views.pull(issue, ctx.snap))


@handler("pulls/list-files")
def list_files(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    head, base = ctx.views.pr_shas(issue, ctx.snap)
    files = []
    if head and base:
        merge_base = repo.git.merge_base(base, head) or base
        status_names = {"A": "added", "D": "removed", "M": "modified", "T": "changed"}
        api = f"{ctx.base}/repos/{q(repo.owner.login)}/{q(repo.name)}"
        html = f"{ctx.base}/{q(repo.owner.login)}/{q(repo.name)}"
        for f in repo.git.diff_files(merge_base, head):
            removed = f["status"] == "D"
            sha_commit = merge_base if removed else head
            entry = repo.git.entry_at(sha_commit, f["filename"])
            files.append(
                {
                    "sha": entry.sha if entry else None,
                    "filename": f["filename"],
                    "status": status_names.get(f["status"][0], "modified"),
                    "additions": f["additions"],
                    "deletions": f["deletions"],
                    "changes": f["additions"] + f["deletions"],
                    "blob_url": f"{html}/blob/{sha_commit}/{f['filename']}",
                    "raw_url": f"{html}/raw/{sha_commit}/{f['filename']}",
                    "contents_url": f"{api}/contents/{f['filename']}?ref={sha_commit}",
                    "patch": f["patch"],
                }
            )
    page, headers = ctx.paginate(files)
    return Reply(200, page, headers)


# ---------------------------------------------------------------------- requested reviewers


@handler("pulls/list-requested-reviewers")
def list_requested(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        pr = ctx.pull(repo, ctx.params["pull_number"]).pull_request
        return Reply(
            200,
            {
                "users": [ctx.views.user(u) for u in pr.requested_reviewers],
                "teams": [ctx.views.team(t) for t in pr.requested_teams],
            },
        )


@handler("pulls/request-reviewers")
def request_reviewers(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    body = ctx.body_dict
    ctx.domain.request_reviewers(
        issue, ctx.actor, list(body.get("reviewers") or []), list(body.get("team_reviewers") or [])
    )
    with ctx.state.lock:
        return Reply(201, ctx.views.pull(issue, ctx.snap, full=False))


@handler("pulls/remove-requested-reviewers")
def remove_requested(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    body = ctx.body_dict
    if "reviewers" not in body:
        raise errors.missing_field("PullRequest", "reviewers")
    ctx.domain.remove_requested_reviewers(
        issue, ctx.actor, list(body.get("reviewers") or []), list(body.get("team_reviewers") or [])
    )
    with ctx.state.lock:
        return Reply(200, ctx.views.pull(issue, ctx.snap, full=False))


# ---------------------------------------------------------------------- reviews


def _review(ctx: Ctx, issue: Issue) -> Review:
    review = ctx.state.reviews.get(ctx.params["review_id"])
    if review is None or review.issue is not issue:
        raise errors.not_found()
    return review


def _visible_reviews(ctx: Ctx, issue: Issue) -> list[Review]:
    """Submitted reviews, plus the caller's own pending one (others' are private)."""
    me = ctx.auth.app_required.bot if ctx.auth.kind == "installation" else None
    return sorted(
        (r for r in ctx.state.reviews.values() if r.issue is issue and (r.state != "PENDING" or r.user is me)),
        key=lambda r: r.id,
    )


@handler("pulls/list-reviews")
def list_reviews(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        issue = ctx.pull(repo, ctx.params["pull_number"])
        page, headers = ctx.paginate(_visible_reviews(ctx, issue))
        return Reply(200, [ctx.views.review(r) for r in page], headers)


@handler("pulls/create-review")
def create_review(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    body = ctx.body_dict
    review = ctx.domain.create_review(
        issue,
        ctx.actor,
        ctx.via_app,
        body=body.get("body"),
        event=body.get("event"),
        commit_id=body.get("commit_id"),
        comments=body.get("comments"),
    )
    with ctx.state.lock:
        return Reply(200, ctx.views.review(review))


@handler("pulls/get-review")
def get_review(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        review = _review(ctx, ctx.pull(repo, ctx.params["pull_number"]))
        if review not in _visible_reviews(ctx, review.issue):
            raise errors.not_found()
        return Reply(200, ctx.views.review(review))


@handler("pulls/update-review")
def update_review(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    review = _review(ctx, ctx.pull(repo, ctx.params["pull_number"]))
    if review.user is not ctx.actor:
        raise errors.forbidden_integration()
    body = ctx.body_dict.get("body")
    if not isinstance(body, str):
        raise errors.missing_field("PullRequestReview", "body")
    ctx.domain.update_review(review, ctx.actor, body)
    with ctx.state.lock:
        return Reply(200, ctx.views.review(review))


@handler("pulls/delete-pending-review")
def delete_pending_review(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    review = _review(ctx, ctx.pull(repo, ctx.params["pull_number"]))
    if review.user is not ctx.actor:
        raise errors.not_found()
    ctx.domain.delete_pending_review(review)
    with ctx.state.lock:
        return Reply(200, ctx.views.review(review))


# ---------------------------------------------------------------------- review comments


def _review_comment(ctx: Ctx, repo: Repository) -> ReviewComment:
    comment = ctx.state.review_comments.get(ctx.params["comment_id"])
    if comment is None or comment.issue.repo is not repo:
        raise errors.not_found()
    review = ctx.state.reviews.get(comment.review_id) if comment.review_id else None
    if (
        review is not None
        and review.state == "PENDING"
        and (ctx.auth.kind != "installation" or review.user is not ctx.auth.app_required.bot)
    ):
        raise errors.not_found()
    return comment


@handler("pulls/list-review-comments")
def list_review_comments(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        issue = ctx.pull(repo, ctx.params["pull_number"])
        visible = {r.id for r in _visible_reviews(ctx, issue)}
        comments = sorted(
            (
                c
                for c in ctx.state.review_comments.values()
                if c.issue is issue and (c.review_id is None or c.review_id in visible)
            ),
            key=lambda c: c.id,
        )
        page, headers = ctx.paginate(comments)
        return Reply(200, [ctx.views.review_comment(c) for c in page], headers)


@handler("pulls/create-review-comment")
def create_review_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.pull(repo, ctx.params["pull_number"])
    comment = ctx.domain.create_review_comment(issue, ctx.actor, ctx.via_app, ctx.body_dict)
    with ctx.state.lock:
        value = ctx.views.review_comment(comment)
    return Reply(201, value, {"location": value["url"]})


@handler("pulls/get-review-comment")
def get_review_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        return Reply(200, ctx.views.review_comment(_review_comment(ctx, repo)))


@handler("pulls/update-review-comment")
def update_review_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    comment = _review_comment(ctx, repo)
    ctx.domain.update_review_comment(comment, ctx.actor, ctx.body_dict.get("body"))
    with ctx.state.lock:
        return Reply(200, ctx.views.review_comment(comment))


@handler("pulls/delete-review-comment")
def delete_review_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ctx.domain.delete_review_comment(_review_comment(ctx, repo), ctx.actor)
    return Reply(204)
