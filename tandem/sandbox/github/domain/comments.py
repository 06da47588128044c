"""Issue and pull request comments, and reactions to comments."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..errors import ApiError
from ..state import Account, App, Issue, IssueComment, Reaction, ReviewComment
from ..util import iso, node_id
from .base import DomainBase

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class Comments(DomainBase):
    def create_comment(self, issue: Issue, actor: Account, via_app: App | None, body: Any) -> IssueComment:
        if not isinstance(body, str) or not body:
            raise errors.missing_field("IssueComment", "body")
        if len(body) > 65536:
            raise errors.validation(
                [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ]
            )
        with self.state.lock:
            if issue.locked and actor.type != "Bot":
                raise ApiError(403, "Unable to create comment because issue is locked.")
            ident = self.state.next_id("comment")
            comment = IssueComment(
                id=ident,
                node_id=node_id("IssueComment", ident),
                repo=issue.repo,
                issue_number=issue.number,
                user=actor,
                body=body,
                via_app=via_app,
            )
            self.state.issue_comments[ident] = comment
            issue.comment_count += 1
            issue.updated_at = comment.created_at
            self.emit(
                issue.repo,
                "issue_comment",
                "created",
                actor,
                {"issue": self.views.issue(issue), "comment": self.views.comment(comment)},
            )
            return comment

    def update_comment(self, comment: IssueComment, actor: Account, body: Any) -> IssueComment:
        if not isinstance(body, str) or not body:
            raise errors.missing_field("IssueComment", "body")
        with self.state.lock:
            if body == comment.body:
                return comment
            old = comment.body
            comment.body = body
            comment.updated_at = iso()
            issue = comment.repo.issues[comment.issue_number]
            self.emit(
                comment.repo,
                "issue_comment",
                "edited",
                actor,
                {
                    "changes": {"body": {"from": old}},
                    "issue": self.views.issue(issue),
                    "comment": self.views.comment(comment),
                },
            )
            return comment

    def delete_comment(self, comment: IssueComment, actor: Account) -> None:
        with self.state.lock:
            if self.state.issue_comments.pop(comment.id, None) is None:
                raise errors.not_found()
            issue = comment.repo.issues[comment.issue_number]
            issue.comment_count -= 1
            self.emit(
                comment.repo,
                "issue_comment",
                "deleted",
                actor,
                {"issue": self.views.issue(issue), "comment": self.views.comment(comment)},
            )

    def add_reaction(self, target: IssueComment | ReviewComment, actor: Account, content: str) -> tuple[Reaction, bool]:
        if content not in REACTIONS:
            raise errors.invalid_field("Reaction", "content")
        with self.state.lock:
            for r in target.reactions:
                if r.user is actor and r.content == content:
                    return r, False
            ident = self.state.next_id("reaction")
            reaction = Reaction(id=ident, node_id=node_id("Reaction", ident), user=actor, content=content)
            target.reactions.append(reaction)
            return reaction, True
