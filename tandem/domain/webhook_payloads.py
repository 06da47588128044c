"""The handled events' payloads, as small models the handlers read (tandem.domain.webhook_events says
which events are handled).

A signed delivery can still be malformed (a field missing, null, of another type, a number
out of range). Checked here, it is known as such at once and parked once with the reason,
instead of failing in a handler with a KeyError on every retry. The models are tolerant: they
name only the fields the handlers read and ignore the rest (GitHub adds fields all the time),
and a field GitHub may leave out is optional. Numbers are given the ranges the database can
store, and times must say their time zone (GitHub's do).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tandem.infra.errors import Unprocessable

Id = Annotated[int, Field(ge=0, lt=2**63)]  # GitHub's ids fit a BIGINT
Number = Annotated[int, Field(ge=0, lt=2**31)]  # PR numbers, line numbers: an INTEGER


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Tolerant):
    id: Id
    login: str
    type: str | None = None

    @property
    def is_bot(self) -> bool:
        """Bots (Tandem itself among them) never count: their comments are not judgments."""
        return self.type == "Bot" or self.login.endswith("[bot]")


class Sender(_Tolerant):
    id: Id | None = None


class Account(_Tolerant):
    id: Id | None = None
    login: str | None = None
    slug: str | None = None  # an enterprise's
    type: str | None = None


class InstallationRef(_Tolerant):
    id: Id


class Installation(InstallationRef):
    account: Account | None = None
    repository_selection: str | None = None
    permissions: dict[str, Any] | None = None


class RepositoryRef(_Tolerant):  # an installation's repository
    id: Id
    full_name: str | None = None
    name: str | None = None
    private: bool | None = None


# GitHub may send null for an empty list.
Repositories = Annotated[list[RepositoryRef], BeforeValidator(lambda value: [] if value is None else value)]


class Repository(_Tolerant):  # the repository an event happened in
    full_name: str | None = None
    default_branch: str | None = None
    master_branch: str | None = None


class PullRequestRef(_Tolerant):
    number: Number


class Head(_Tolerant):
    sha: str


class PullRequest(PullRequestRef):
    head: Head


class Issue(_Tolerant):
    number: Number
    pull_request: dict[str, Any] | None = None  # present: the issue is a pull request


class Writing(_Tolerant):
    """What comments and reviews share. GitHub always names the author (its `ghost` account for a
    deleted one)."""

    id: Id
    user: User
    body: str | None = None
    html_url: str | None = None
    updated_at: AwareDatetime | None = None


class Comment(Writing):
    created_at: AwareDatetime

    @property
    def written_at(self) -> datetime:
        return self.created_at


class LineComment(Comment):
    path: str | None = None
    line: Number | None = None
    original_line: Number | None = None
    start_line: Number | None = None
    side: str | None = None
    commit_id: str | None = None


class Review(Writing):
    submitted_at: AwareDatetime | None = None  # none while the review is pending

    @property
    def written_at(self) -> datetime | None:
        return self.submitted_at


class Event(_Tolerant):
    """What every handled event may carry."""

    installation: InstallationRef | None = None
    repository: Repository | None = None
    sender: Sender | None = None

    @property
    def repo(self) -> str | None:
        """The full name of the repository the event happened in."""
        return self.repository.full_name if self.repository is not None else None


class InstallationEvent(Event):
    installation: Installation
    repositories: Repositories = []


class InstallationRepositoriesEvent(Event):
    installation: Installation
    repositories_added: Repositories = []
    repositories_removed: Repositories = []


class PushEvent(Event):
    ref: str | None = None


class PullRequestEvent(Event):
    pull_request: PullRequest
    before: str | None = None  # only when the head moved (synchronize)


class IssueCommentEvent(Event):
    issue: Issue
    comment: Comment


class ReviewEvent(Event):
    pull_request: PullRequestRef
    review: Review


class LineCommentEvent(Event):
    pull_request: PullRequestRef
    comment: LineComment


class OrganizationEvent(Event):  # membership, team and organization events
    organization: Account | None = None


class App(_Tolerant):
    id: Id | None = None
    slug: str | None = None


class CheckRun(_Tolerant):
    id: Id
    name: str
    head_sha: str
    status: str | None = None
    conclusion: str | None = None
    html_url: str | None = None
    details_url: str | None = None
    app: App | None = None


class CheckSuite(_Tolerant):
    id: Id
    head_sha: str
    status: str | None = None
    conclusion: str | None = None
    app: App | None = None


class CheckRunEvent(Event):
    check_run: CheckRun


class CheckSuiteEvent(Event):
    check_suite: CheckSuite


class StatusEvent(Event):
    id: Id
    sha: str
    state: str
    context: str
    target_url: str | None = None


E = TypeVar("E", bound=Event)

EVENTS: dict[str, type[Event]] = {
    "installation": InstallationEvent,
    "installation_repositories": InstallationRepositoriesEvent,
    "push": PushEvent,
    "pull_request": PullRequestEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review": ReviewEvent,
    "pull_request_review_comment": LineCommentEvent,
    "membership": OrganizationEvent,
    "team": OrganizationEvent,
    "organization": OrganizationEvent,
    "check_run": CheckRunEvent,
    "check_suite": CheckSuiteEvent,
    "status": StatusEvent,
}


def parse(event: str, body: str) -> Event:
    """The payload as the handlers read it, or Unprocessable saying what is wrong."""
    try:
        return EVENTS.get(event, Event).model_validate_json(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise Unprocessable(f"malformed {event} payload: {'; '.join(problems[:5])}") from None


def narrow(payload: Event, model: type[E]) -> E:
    """The payload as the model its handler reads, or Unprocessable if it was parsed as another
    (a handler registered for an event whose model is not the one it reads)."""
    if not isinstance(payload, model):
        raise Unprocessable(f"payload: a {type(payload).__name__}, not the {model.__name__} its handler reads")
    return payload
