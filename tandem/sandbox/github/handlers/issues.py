"""Issues (pull requests are issues too), issue comments, reactions, issue labels."""

from __future__ import annotations

from .. import errors
from ..api import Ctx, Reply, handler
from ..state import IssueComment, Repository


@handler("issues/get")
def get_issue(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        return Reply(200, ctx.views.issue(ctx.issue(repo, ctx.params["issue_number"])))


@handler("issues/update")
def update_issue(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    body = ctx.body_dict
    if "title" in body and (body["title"] is None or body["title"] == ""):
        raise errors.missing_field("Issue", "title")
    assignees = body.get("assignees")
    if assignees is None and body.get("assignee"):
        assignees = [body["assignee"]]
    if body.get("state") not in (None, "open", "closed"):
        raise errors.invalid_field("Issue", "state")
    ctx.domain.update_issue(
        issue,
        ctx.actor,
        ctx.via_app,
        title=body.get("title"),
        body=body.get("body", ...),
        state=body.get("state"),
        state_reason=body.get("state_reason"),
        labels=body.get("labels"),
        assignees=assignees,
    )
    with ctx.state.lock:
        return Reply(200, ctx.views.issue(issue))


# ---------------------------------------------------------------------- comments


def _comment(ctx: Ctx, repo: Repository) -> IssueComment:
    comment = ctx.state.issue_comments.get(ctx.params["comment_id"])
    if comment is None or comment.repo is not repo:
        raise errors.not_found()
    return comment


@handler("issues/list-comments")
def list_comments(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    since = ctx.query.get("since")
    with ctx.state.lock:
        comments = sorted(
            (
                c
                for c in ctx.state.issue_comments.values()
                if c.repo is repo and c.issue_number == issue.number and (not since or c.updated_at >= since)
            ),
            key=lambda c: c.id,
        )
        page, headers = ctx.paginate(comments)
        return Reply(200, [ctx.views.comment(c) for c in page], headers)


@handler("issues/create-comment")
def create_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    comment = ctx.domain.create_comment(issue, ctx.actor, ctx.via_app, ctx.body_dict.get("body"))
    with ctx.state.lock:
        value = ctx.views.comment(comment)
    return Reply(201, value, {"location": value["url"]})


@handler("issues/get-comment")
def get_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        return Reply(200, ctx.views.comment(_comment(ctx, repo)))


@handler("issues/update-comment")
def update_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    comment = _comment(ctx, repo)
    ctx.domain.update_comment(comment, ctx.actor, ctx.body_dict.get("body"))
    with ctx.state.lock:
        return Reply(200, ctx.views.comment(comment))


@handler("issues/delete-comment")
def delete_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ctx.domain.delete_comment(_comment(ctx, repo), ctx.actor)
    return Reply(204)


@handler("reactions/list-for-issue-comment")
def list_reactions(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        reactions = list(_comment(ctx, repo).reactions)
        content = ctx.query.get("content")
        if content:
            reactions = [r for r in reactions if r.content == content]
        page, headers = ctx.paginate(reactions)
        return Reply(200, [ctx.views.reaction(r) for r in page], headers)


@handler("reactions/create-for-issue-comment")
def create_reaction(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    comment = _comment(ctx, repo)
    reaction, created = ctx.domain.add_reaction(comment, ctx.actor, ctx.body_dict.get("content"))
    return Reply(201 if created else 200, ctx.views.reaction(reaction))


# ---------------------------------------------------------------------- labels on an issue


def _label_names(json_body) -> list[str]:
    """The label names of a POST/PUT body: ``{"labels": [...]}``, a bare array,
    or items that are names or ``{"name": ...}`` objects (GitHub takes all)."""
    items = json_body.get("labels") if isinstance(json_body, dict) else json_body
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            raise errors.invalid_field("Label", "name")
        names.append(name)
    return names


def _issue_labels(ctx: Ctx, issue) -> list[dict]:
    return [ctx.views.label(issue.repo, lb) for lb in issue.labels]


@handler("issues/list-labels-on-issue")
def list_issue_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        issue = ctx.issue(repo, ctx.params["issue_number"])
        page, headers = ctx.paginate(list(issue.labels))
        return Reply(200, [ctx.views.label(repo, lb) for lb in page], headers)


@handler("issues/add-labels")
def add_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    names = _label_names(ctx.json)
    if not names:
        raise errors.validation([{"resource": "Label", "code": "invalid", "field": "labels"}])
    ctx.domain.add_labels(issue, names, ctx.actor, ctx.via_app)
    with ctx.state.lock:
        return Reply(200, _issue_labels(ctx, issue))


@handler("issues/set-labels")
def set_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    ctx.domain.set_labels(issue, _label_names(ctx.json), ctx.actor, ctx.via_app)
    with ctx.state.lock:
        return Reply(200, _issue_labels(ctx, issue))


@handler("issues/remove-all-labels")
def remove_all_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    ctx.domain.set_labels(issue, [], ctx.actor, ctx.via_app)
    return Reply(204)


@handler("issues/remove-label")
def remove_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    issue = ctx.issue(repo, ctx.params["issue_number"])
    ctx.domain.remove_label(issue, ctx.params["name"], ctx.actor, ctx.via_app)
    with ctx.state.lock:
        return Reply(200, _issue_labels(ctx, issue))
