"""Pull request reviews and their line comments."""

from __future__ import annotations

import re

from .. import errors
from ..state import Account, App, Issue, Review, ReviewComment
from ..util import iso, node_id
from ..views.snapshot import GitSnapshot
from .base import DomainBase


class Reviews(DomainBase):
    # ---------------------------------------------------------------- reviews

    def _head_sha(self, issue: Issue) -> str:
        head, _ = self.views.pr_shas(issue, GitSnapshot())
        if head is None:  # refs/pull/N/head, kept from the pull request's opening on, is its fallback
            raise RuntimeError(f"pull request #{issue.number} has no head commit")
        return head

    def create_review(
        self,
        issue: Issue,
        actor: Account,
        via_app: App | None,
        *,
        body: str | None,
        event: str | None,
        commit_id: str | None,
        comments: list[dict] | None,
    ) -> Review:
        state_for = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
            None: "PENDING",
            "": "PENDING",
        }
        if event not in state_for:
            raise errors.invalid_field("PullRequestReview", "event")
        body = body or ""
        with self.state.lock:
            if event in ("APPROVE", "REQUEST_CHANGES") and issue.user is actor:
                verb = "approve" if event == "APPROVE" else "request changes on"
                raise errors.validation(
                    message="Unprocessable Entity", errors=[f"Review Can not {verb} your own pull request"]
                )
            if event == "REQUEST_CHANGES" and not body:
                raise errors.validation(
                    message="Unprocessable Entity", errors=["Body is required when using REQUEST_CHANGES"]
                )
            if event == "COMMENT" and not body and not comments:
                raise errors.validation(message="Unprocessable Entity", errors=["Body is required when using COMMENT"])
            if state_for[event] == "PENDING" and any(
                r.issue is issue and r.user is actor and r.state == "PENDING" for r in self.state.reviews.values()
            ):
                raise errors.validation(
                    message="Unprocessable Entity", errors=["User can only have one pending review per pull request"]
                )
            head = self._head_sha(issue)
            ident = self.state.next_id("review")
            review = Review(
                id=ident,
                node_id=node_id("PullRequestReview", ident),
                issue=issue,
                user=actor,
                body=body,
                state=state_for[event],
                commit_id=commit_id or head,
            )
            new_comments = [
                self._new_review_comment(issue, actor, review.id, c, review.commit_id) for c in comments or []
            ]
            self.state.reviews[ident] = review
            for c in new_comments:
                self.state.review_comments[c.id] = c
                issue.review_comment_count += 1
            if review.state != "PENDING":
                self._submit(review, actor, new_comments)
            return review

    def _submit(self, review: Review, actor: Account, comments: list[ReviewComment]) -> None:
        issue = review.issue
        review.submitted_at = iso()
        issue.updated_at = review.submitted_at
        if actor in issue.pull_request.requested_reviewers:
            issue.pull_request.requested_reviewers.remove(actor)
        for c in comments:
            self.emit(
                issue.repo,
                "pull_request_review_comment",
                "created",
                actor,
                {"comment": self.views.review_comment(c), "pull_request": self.views.pull(issue, full=False)},
            )
        self.emit(
            issue.repo,
            "pull_request_review",
            "submitted",
            actor,
            {"review": self.views.review(review), "pull_request": self.views.pull(issue, full=False)},
        )

    def submit_pending_review(self, review: Review, actor: Account, event: str, body: str | None) -> Review:
        with self.state.lock:
            if review.state != "PENDING":
                raise errors.validation(message="Unprocessable Entity", errors=["Can not submit a non-pending review"])
            review.state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}[
                event
            ]
            if body:
                review.body = body
            comments = [c for c in self.state.review_comments.values() if c.review_id == review.id]
            self._submit(review, actor, comments)
            return review

    def update_review(self, review: Review, actor: Account, body: str) -> Review:
        with self.state.lock:
            old = review.body
            review.body = body
            if review.state != "PENDING" and old != body:
                self.emit(
                    review.issue.repo,
                    "pull_request_review",
                    "edited",
                    actor,
                    {
                        "changes": {"body": {"from": old}},
                        "review": self.views.review(review),
                        "pull_request": self.views.pull(review.issue, full=False),
                    },
                )
            return review

    def delete_pending_review(self, review: Review) -> Review:
        with self.state.lock:
            if review.state != "PENDING":
                raise errors.validation(
                    message="Unprocessable Entity", errors=["Can not delete a non-pending pull request review"]
                )
            self.state.reviews.pop(review.id, None)
            for c in [c for c in self.state.review_comments.values() if c.review_id == review.id]:
                self.state.review_comments.pop(c.id, None)
                review.issue.review_comment_count -= 1
            return review

    # ---------------------------------------------------------------- review comments

    def _diff_hunk(
        self, issue: Issue, path: str, line: int | None, side: str, commit: str, position: int | None = None
    ) -> tuple[str, int, int, str]:
        """Find a commented line in the file's diff, by ``line``/``side`` or by
        ``position`` (lines below the first ``@@``, the deprecated way).
        Returns (the diff hunk up to that line, as GitHub shows above a review
        comment; its position; its line; its side). 422 when it is not in the diff."""
        repo = issue.repo
        _, base = self.views.pr_shas(issue, GitSnapshot())
        merge_base = repo.git.merge_base(base, commit) if base else None
        if merge_base is None:
            raise errors.validation(
                message="Unprocessable Entity", errors=["pull_request_review_thread.path diff not available"]
            )
        diff = repo.git.text("diff", "--no-renames", "--no-color", merge_base, commit, "--", path)
        if not diff:
            raise errors.validation(
                message="Unprocessable Entity",
                errors=["pull_request_review_thread.path diff too large or file not changed"],
            )
        lines = diff.splitlines()
        first_hunk = next((i for i, t in enumerate(lines) if t.startswith("@@")), 0)
        hunk_start, old_no, new_no = None, 0, 0
        for i, text in enumerate(lines):
            m = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
            if m:
                hunk_start, old_no, new_no = i, int(m.group(1)), int(m.group(2))
                continue
            if hunk_start is None:
                continue
            if text.startswith("+"):
                here = (new_no, "RIGHT")
                new_no += 1
            elif text.startswith("-"):
                here = (old_no, "LEFT")
                old_no += 1
            elif text.startswith("\\"):
                continue
            else:
                here = (new_no, "RIGHT") if side == "RIGHT" else (old_no, "LEFT")
                old_no += 1
                new_no += 1
            if here == (line, side) or (position is not None and i - first_hunk == position):
                return "\n".join(lines[hunk_start : i + 1]), i - first_hunk, here[0], here[1]
        raise errors.validation(
            message="Unprocessable Entity", errors=["pull_request_review_thread.line must be part of the diff"]
        )

    def _new_review_comment(
        self, issue: Issue, actor: Account, review_id: int | None, spec: dict, commit_id: str | None
    ) -> ReviewComment:
        path = spec.get("path")
        if not path:
            raise errors.missing_field("PullRequestReviewComment", "path")
        body = spec.get("body")
        if not body:
            raise errors.missing_field("PullRequestReviewComment", "body")
        side = spec.get("side") or "RIGHT"
        commit = commit_id or self._head_sha(issue)
        subject_type = spec.get("subject_type") or "line"
        line = spec.get("line")
        position = None
        if subject_type == "file":
            hunk, line = "", None
        else:
            by_position = int(spec["position"]) if line is None and spec.get("position") is not None else None
            if line is None and by_position is None:
                raise errors.missing_field("PullRequestReviewComment", "line")
            hunk, position, line, side = self._diff_hunk(
                issue, path, None if line is None else int(line), side, commit, by_position
            )
        ident = self.state.next_id("review_comment")
        return ReviewComment(
            id=ident,
            node_id=node_id("PullRequestReviewComment", ident),
            issue=issue,
            review_id=review_id,
            user=actor,
            body=body,
            path=path,
            commit_id=commit,
            original_commit_id=commit,
            diff_hunk=hunk,
            line=line,
            side=side,
            position=position,
            start_line=spec.get("start_line"),
            start_side=spec.get("start_side") if spec.get("start_line") else None,
            subject_type=subject_type,
        )

    def create_review_comment(self, issue: Issue, actor: Account, via_app: App | None, spec: dict) -> ReviewComment:
        """A single review comment: GitHub wraps it in a submitted COMMENTED review."""
        with self.state.lock:
            reply_to = spec.get("in_reply_to")
            commit: str | None
            if reply_to is not None:
                parent = self.state.review_comments.get(int(reply_to))
                if parent is None or parent.issue is not issue:
                    raise errors.not_found()
                spec = {
                    **spec,
                    "path": parent.path,
                    "line": parent.line,
                    "side": parent.side,
                    "subject_type": parent.subject_type,
                }
                commit = parent.commit_id
            else:
                commit = spec.get("commit_id")
            if commit is not None and issue.repo.git.object_type(commit) != "commit":
                raise errors.invalid_field("PullRequestReviewComment", "commit_id")
            ident = self.state.next_id("review")
            review = Review(
                id=ident,
                node_id=node_id("PullRequestReview", ident),
                issue=issue,
                user=actor,
                body="",
                state="COMMENTED",
                commit_id=commit or self._head_sha(issue),
            )
            comment = self._new_review_comment(issue, actor, review.id, spec, commit)
            if reply_to is not None and parent is not None:
                comment.in_reply_to_id = int(reply_to)
                comment.diff_hunk = parent.diff_hunk
            self.state.reviews[ident] = review
            self.state.review_comments[comment.id] = comment
            issue.review_comment_count += 1
            self._submit(review, actor, [comment])
            return comment

    def update_review_comment(self, comment: ReviewComment, actor: Account, body: str) -> ReviewComment:
        if not body:
            raise errors.missing_field("PullRequestReviewComment", "body")
        with self.state.lock:
            old = comment.body
            if old == body:
                return comment
            comment.body = body
            comment.updated_at = iso()
            self.emit(
                comment.issue.repo,
                "pull_request_review_comment",
                "edited",
                actor,
                {
                    "changes": {"body": {"from": old}},
                    "comment": self.views.review_comment(comment),
                    "pull_request": self.views.pull(comment.issue, full=False),
                },
            )
            return comment

    def delete_review_comment(self, comment: ReviewComment, actor: Account) -> None:
        with self.state.lock:
            if self.state.review_comments.pop(comment.id, None) is None:
                raise errors.not_found()
            comment.issue.review_comment_count -= 1
            self.emit(
                comment.issue.repo,
                "pull_request_review_comment",
                "deleted",
                actor,
                {
                    "comment": self.views.review_comment(comment),
                    "pull_request": self.views.pull(comment.issue, full=False),
                },
            )
