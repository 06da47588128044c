"""What people do on github.com, for setting up and driving tests.

``emu.as_user("octocat").comment("evals-org/mlflow", 12, "/prefer A")`` changes
the state exactly as the REST API would (same ``Domain`` code) and queues the
webhooks GitHub would send, with ``sender`` = that user. Each action returns
the object as the REST API would show it (a dict with attribute access:
``comment.id``, ``comment.html_url``, ``comment["body"]``).

Actions check what github.com checks for a person: the user must be able to
see the repository; reviews can't approve one's own pull request; review
comments must be on lines of the diff; and so on (``ApiError`` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import ApiError
from .state import Account, App, CheckRun, Issue, IssueComment, Repository, ReviewComment
from .statuses import create_status

if TYPE_CHECKING:
    from .core import Core


class Resource(dict):
    """A rendered GitHub object: a dict whose keys are also attributes
    (nested objects too: ``pr.head.repo.full_name``)."""

    def __init__(self, data: dict):
        super().__init__({k: _wrap(v) for k, v in data.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Resource(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class UserActions:
    def __init__(self, core: Core, login: str):
        self.core = core
        user = core.state.account(login)
        if user is None:
            raise ValueError(f"no user {login!r}; create it with emu.create_user()")
        if user.is_org:
            raise ValueError(f"{login!r} is an organization, not a person")
        self.user: Account = user

    # ------------------------------------------------------------------ helpers

    def _render(self, operation_id: str, status: int, value: Any) -> Resource:
        op = self.core.specs["2022-11-28"].operations[operation_id]
        return Resource(self.core.renderer.render(op.response_schema(status), value))

    def _repo(self, full_name: str) -> Repository:
        owner, _, name = full_name.partition("/")
        repo = self.core.state.repo(owner, name)
        if repo is None:
            raise errors.not_found()
        login = self.user.login.lower()
        if repo.private and not (
            repo.owner is self.user
            or login in repo.collaborators
            or (repo.owner.is_org and login in repo.owner.members)
        ):
            raise errors.not_found()
        return repo

    def _issue(self, full_name: str, number: int) -> Issue:
        issue = self._repo(full_name).issues.get(number)
        if issue is None:
            raise errors.not_found()
        return issue

    def _pull(self, full_name: str, number: int) -> Issue:
        issue = self._issue(full_name, number)
        if issue.pr is None:
            raise errors.not_found()
        return issue

    def _comment(self, full_name: str, comment_id: int) -> IssueComment:
        repo = self._repo(full_name)
        comment = self.core.state.issue_comments.get(comment_id)
        if comment is None or comment.repo is not repo:
            raise errors.not_found()
        return comment

    def _review_comment(self, full_name: str, comment_id: int) -> ReviewComment:
        repo = self._repo(full_name)
        comment = self.core.state.review_comments.get(comment_id)
        if comment is None or comment.issue.repo is not repo:
            raise errors.not_found()
        return comment

    def _own(self, obj) -> None:
        if obj.user is not self.user:
            repo = obj.repo if hasattr(obj, "repo") else obj.issue.repo
            if not (
                repo.owner is self.user
                or self.user.login.lower() in repo.collaborators
                or (repo.owner.is_org and repo.owner.members.get(self.user.login.lower()) == "admin")
            ):
                raise ApiError(403, "You can only edit or delete your own comments")

    # ------------------------------------------------------------------ issue comments

    def comment(self, repo: str, number: int, body: str) -> Resource:
        """Comment on an issue or pull request (``issue_comment`` ``created``)."""
        comment = self.core.domain.create_comment(self._issue(repo, number), self.user, None, body)
        return self._render("issues/create-comment", 201, self.core.views.comment(comment))

    def edit_comment(self, repo: str, comment_id: int, body: str) -> Resource:
        comment = self._comment(repo, comment_id)
        self._own(comment)
        self.core.domain.update_comment(comment, self.user, body)
        return self._render("issues/update-comment", 200, self.core.views.comment(comment))

    def delete_comment(self, repo: str, comment_id: int) -> None:
        comment = self._comment(repo, comment_id)
        self._own(comment)
        self.core.domain.delete_comment(comment, self.user)

    def react(self, repo: str, comment_id: int, content: str) -> Resource:
        reaction, _ = self.core.domain.add_reaction(self._comment(repo, comment_id), self.user, content)
        return self._render("reactions/create-for-issue-comment", 201, self.core.views.reaction(reaction))

    # ------------------------------------------------------------------ reviews

    def submit_review(
        self,
        repo: str,
        number: int,
        body: str = "",
        event: str = "COMMENT",
        comments: list[dict] | None = None,
        commit_id: str | None = None,
    ) -> Resource:
        """Submit a review (``pull_request_review`` ``submitted``); ``event`` is
        COMMENT, APPROVE or REQUEST_CHANGES."""
        if event not in ("COMMENT", "APPROVE", "REQUEST_CHANGES"):
            raise ValueError("event must be COMMENT, APPROVE or REQUEST_CHANGES")
        review = self.core.domain.create_review(
            self._pull(repo, number), self.user, None, body=body, event=event, commit_id=commit_id, comments=comments
        )
        return self._render("pulls/create-review", 200, self.core.views.review(review))

    def review_comment(
        self,
        repo: str,
        number: int,
        *,
        path: str,
        line: int | None = None,
        body: str,
        side: str = "RIGHT",
        start_line: int | None = None,
        start_side: str | None = None,
        commit_id: str | None = None,
        subject_type: str = "line",
    ) -> Resource:
        """A single comment on a line of the diff (``pull_request_review_comment``
        ``created``, inside a COMMENTED review, as on GitHub)."""
        spec = {
            "path": path,
            "line": line,
            "body": body,
            "side": side,
            "start_line": start_line,
            "start_side": start_side,
            "commit_id": commit_id,
            "subject_type": subject_type,
        }
        comment = self.core.domain.create_review_comment(
            self._pull(repo, number), self.user, None, {k: v for k, v in spec.items() if v is not None}
        )
        return self._render("pulls/create-review-comment", 201, self.core.views.review_comment(comment))

    def reply_to_review_comment(self, repo: str, number: int, comment_id: int, body: str) -> Resource:
        comment = self.core.domain.create_review_comment(
            self._pull(repo, number), self.user, None, {"in_reply_to": comment_id, "body": body}
        )
        return self._render("pulls/create-review-comment", 201, self.core.views.review_comment(comment))

    def edit_review_comment(self, repo: str, comment_id: int, body: str) -> Resource:
        comment = self._review_comment(repo, comment_id)
        self._own(comment)
        self.core.domain.update_review_comment(comment, self.user, body)
        return self._render("pulls/update-review-comment", 200, self.core.views.review_comment(comment))

    def delete_review_comment(self, repo: str, comment_id: int) -> None:
        comment = self._review_comment(repo, comment_id)
        self._own(comment)
        self.core.domain.delete_review_comment(comment, self.user)

    # ------------------------------------------------------------------ pull requests

    def open_pull_request(
        self, repo: str, *, head: str, base: str, title: str, body: str | None = None, draft: bool = False
    ) -> Resource:
        issue = self.core.domain.create_pull(
            self._repo(repo),
            self.user,
            None,
            title=title,
            head=head,
            base=base,
            body=body,
            draft=draft,
            maintainer_can_modify=True,
        )
        return self._render("pulls/create", 201, self.core.views.pull(issue))

    def close_pull_request(self, repo: str, number: int) -> None:
        self.core.domain.update_issue(self._pull(repo, number), self.user, None, state="closed")

    def reopen_pull_request(self, repo: str, number: int) -> None:
        self.core.domain.update_issue(self._pull(repo, number), self.user, None, state="open")

    def edit_pull_request(self, repo: str, number: int, *, title: str | None = None, body: str | None = None) -> None:
        # update_issue takes ... for a body left as it is.
        self.core.domain.update_issue(
            self._pull(repo, number), self.user, None, title=title, body=... if body is None else body
        )

    def mark_ready_for_review(self, repo: str, number: int) -> None:
        """The "Ready for review" button (``pull_request`` ``ready_for_review``)."""
        self.core.domain.set_draft(self._pull(repo, number), False, self.user)

    def convert_to_draft(self, repo: str, number: int) -> None:
        self.core.domain.set_draft(self._pull(repo, number), True, self.user)

    def request_review(
        self, repo: str, number: int, reviewers: Sequence[str] = (), team_reviewers: Sequence[str] = ()
    ) -> None:
        self.core.domain.request_reviewers(self._pull(repo, number), self.user, list(reviewers), list(team_reviewers))

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        self.core.domain.add_labels(self._issue(repo, number), labels, self.user, None)

    def remove_label(self, repo: str, number: int, label: str) -> None:
        self.core.domain.remove_label(self._issue(repo, number), label, self.user, None)

    def push(self, repo: str, files: dict, branch: str, message: str = "Update files") -> str:
        """Commit and push ``files`` to ``branch`` as this user (``synchronize``
        for open pull requests whose head it is)."""
        return self.core.domain.commit_files(self._repo(repo), files, branch, message, self.user)


class AppActions:
    """What another GitHub App installed on the repository does, such as a CI service: check
    runs and commit statuses on a commit, each with the webhooks GitHub sends every subscribed
    app (``check_run``, ``check_suite`` once a suite has completed, ``status``).

    ``emu.as_app("ci").check_run("evals-org/mlflow", sha, "tests")`` then ``.complete(run,
    "failure")``; ``.status("evals-org/mlflow", sha, "success", "ci/build")``.
    """

    def __init__(self, core: Core, app: App):
        self.core = core
        self.app = app

    def _repo(self, full_name: str) -> Repository:
        owner, _, name = full_name.partition("/")
        repo = self.core.state.repo(owner, name)
        if repo is None:
            raise errors.not_found()
        return repo

    def check_run(
        self,
        repo: str,
        head_sha: str,
        name: str,
        *,
        status: str = "in_progress",
        conclusion: str | None = None,
        details_url: str | None = None,
    ) -> CheckRun:
        fields: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status}
        if conclusion is not None:
            fields["conclusion"] = conclusion
        if details_url is not None:
            fields["details_url"] = details_url
        return self.core.domain.create_check_run(self._repo(repo), self.app, fields)

    def complete(self, run: CheckRun, conclusion: str) -> CheckRun:
        return self.core.domain.update_check_run(run, {"status": "completed", "conclusion": conclusion})

    def status(
        self,
        repo: str,
        sha: str,
        state: str,
        context: str,
        target_url: str | None = None,
        description: str | None = None,
    ) -> Resource:
        return Resource(
            create_status(self.core.domain, self._repo(repo), self.app, sha, state, context, target_url, description)
        )
