"""The shape of each handled event's payload, checked before any handler runs.

A signed delivery can still be malformed (a field missing, null, of another type, a number
out of range). Checked here, it is known as such at once and parked once with the reason,
instead of failing in a handler with a KeyError on every retry. The models name only the
fields the handlers read, and allow any other: GitHub adds fields all the time. Numbers are
given the ranges the database can store, and times must say their time zone (GitHub's do).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tandem.errors import Unprocessable

Id = Annotated[int, Field(ge=0, lt=2**63)]  # GitHub's ids fit a BIGINT
Number = Annotated[int, Field(ge=0, lt=2**31)]  # PR numbers, line numbers: an INTEGER


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class User(_Loose):
    id: Id
    login: str
    type: str | None = None


class Sender(_Loose):
    id: Id | None = None


class Account(_Loose):
    id: Id | None = None
    login: str | None = None
    slug: str | None = None
    type: str | None = None


class InstallationRef(_Loose):
    id: Id


class Installation(InstallationRef):
    account: Account | None = None
    repository_selection: str | None = None
    permissions: dict[str, Any] | None = None


class RepositoryRef(_Loose):  # an installation's repository
    id: Id
    full_name: str | None = None
    name: str | None = None
    private: bool | None = None


class Repository(_Loose):  # the repository an event happened in
    full_name: str | None = None
    default_branch: str | None = None
    master_branch: str | None = None


class PullRequestRef(_Loose):
    number: Number | None = None


class Head(_Loose):
    sha: str | None = None


class PullRequest(PullRequestRef):
    head: Head | None = None


class Issue(_Loose):
    number: Number | None = None
    pull_request: dict[str, Any] | None = None


class Comment(_Loose):
    id: Id
    user: User | None = None
    body: str | None = None
    html_url: str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class LineComment(Comment):
    path: str | None = None
    line: Number | None = None
    original_line: Number | None = None
    start_line: Number | None = None
    side: str | None = None
    commit_id: str | None = None


class Review(Comment):
    submitted_at: AwareDatetime | None = None


class _Event(_Loose):
    installation: InstallationRef | None = None
    repository: Repository | None = None
    sender: Sender | None = None


class InstallationEvent(_Event):
    installation: Installation
    repositories: list[RepositoryRef] | None = None


class InstallationRepositoriesEvent(_Event):
    installation: Installation
    repositories_added: list[RepositoryRef] | None = None
    repositories_removed: list[RepositoryRef] | None = None


class PushEvent(_Event):
    ref: str | None = None


class PullRequestEvent(_Event):
    pull_request: PullRequest | None = None
    before: str | None = None


class IssueCommentEvent(_Event):
    issue: Issue | None = None
    comment: Comment


class ReviewEvent(_Event):
    pull_request: PullRequestRef | None = None
    review: Review


class LineCommentEvent(_Event):
    pull_request: PullRequestRef | None = None
    comment: LineComment


class App(_Loose):
    id: Id | None = None
    slug: str | None = None


class CheckRun(_Loose):
    id: Id
    name: str
    head_sha: str
    status: str | None = None
    conclusion: str | None = None
    html_url: str | None = None
    details_url: str | None = None
    app: App | None = None


class CheckSuite(_Loose):
    id: Id
    head_sha: str
    status: str | None = None
    conclusion: str | None = None
    app: App | None = None


class CheckRunEvent(_Event):
    check_run: CheckRun


class CheckSuiteEvent(_Event):
    check_suite: CheckSuite


class StatusEvent(_Event):
    id: Id
    sha: str
    state: str
    context: str
    target_url: str | None = None


EVENTS: dict[str, type[_Event]] = {
    "installation": InstallationEvent,
    "installation_repositories": InstallationRepositoriesEvent,
    "push": PushEvent,
    "pull_request": PullRequestEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review": ReviewEvent,
    "pull_request_review_comment": LineCommentEvent,
    "check_run": CheckRunEvent,
    "check_suite": CheckSuiteEvent,
    "status": StatusEvent,
}


def parse(event: str, body: str) -> dict[str, Any]:
    """The payload as the handlers may read it (what they read is there, of the right type), or
    Unprocessable saying what is wrong."""
    try:
        model = EVENTS.get(event, _Event).model_validate_json(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise Unprocessable(f"malformed {event} payload: {'; '.join(problems[:5])}") from None
    # Exactly the fields GitHub sent (coerced to their types), and every field no model names.
    return orjson.loads(model.model_dump_json(exclude_unset=True))
