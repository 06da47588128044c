"""Commit statuses (``POST /repos/{o}/{r}/statuses/{sha}``; the REST route is not served):
what a CI app that reports statuses instead of check runs posts, with the ``status`` webhook
GitHub sends every subscribed app. Used through ``emu.as_app(...).status``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .state import App, Repository
from .util import iso

if TYPE_CHECKING:
    from .domain import Domain

STATES = ("error", "failure", "pending", "success")


def create_status(
    domain: Domain,
    repo: Repository,
    app: App,
    sha: str,
    state: str,
    context: str,
    target_url: str | None = None,
    description: str | None = None,
) -> dict:
    if state not in STATES:
        raise errors.validation(message=f"state {state!r} is not one of {', '.join(STATES)}")
    if repo.git.object_type(sha) != "commit":
        raise errors.validation(message="No commit found for SHA: " + sha)
    with domain.state.lock:
        now = iso()
        status = {
            "id": domain.state.next_id("status"),
            "sha": sha,
            "name": repo.full_name,
            "state": state,
            "context": context,
            "target_url": target_url,
            "description": description,
            "created_at": now,
            "updated_at": now,
            "commit": {"sha": sha},
            "branches": [],
        }
        domain.state.commit_statuses.append(status)
        domain.emit(repo, "status", None, app.bot, status)
        return status
