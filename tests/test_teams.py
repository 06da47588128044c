"""Team changes apply at once: GitHub's membership and team webhooks drop the cached roles."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from tandem.domain import roles
from tandem.infra.models import Judgment
from tests import github_views as views
from tests.conftest import settle

REPO = "evals-org/mlflow"
PAYLOADS = Path(__file__).parent / "fixtures" / "webhook-payloads"


def votes(services) -> dict[str, str]:
    with services.storage.transaction() as session:
        return {
            j.rater_login: j.verdict for j in session.scalars(select(Judgment).where(Judgment.superseded_at.is_(None)))
        }


def team_event(github, services, event: str, name: str, **changes) -> None:
    """GitHub's example payload, about evals-org's raters team and this installation, processed."""
    payload = json.loads((PAYLOADS / event / name).read_text())
    payload["organization"]["login"] = "evals-org"
    payload["team"]["slug"] = payload["team"]["name"] = "raters"
    payload["installation"] = {"id": github.installation.id}
    for key, value in changes.items():
        payload[key]["login"] = value
    github.deliver(event, payload)
    settle(github, services)


def set_member(github, login: str, member: bool) -> None:
    members = github._account("evals-org").teams["raters"].members
    if member:
        members[login] = "member"
    else:
        members.pop(login, None)


def comment(github, services, login: str, number: int, body: str) -> None:
    github.as_user(login).comment(REPO, number, body)
    settle(github, services)


def test_someone_added_to_the_raters_team_may_vote_at_once(github, services, pair):
    github.create_user("rater-four")
    github.add_org_member("evals-org", "rater-four")
    comment(github, services, "rater-four", pair["A"], "/prefer A")
    assert votes(services) == {}

    set_member(github, "rater-four", True)
    team_event(github, services, "membership", "added.payload.json", member="rater-four")
    comment(github, services, "rater-four", pair["A"], "/prefer B")
    assert votes(services) == {"rater-four": "B"}


def test_someone_removed_from_the_team_or_a_deleted_team_stops_counting_at_once(github, services, pair):
    comment(github, services, "rater-three", pair["A"], "/prefer A")
    assert votes(services) == {"rater-three": "A"}

    set_member(github, "rater-three", False)
    team_event(github, services, "membership", "removed.payload.json", member="rater-three")
    comment(github, services, "rater-three", pair["A"], "/prefer B")
    assert "only raters can use `/prefer`" in views.comments(github, REPO, pair["A"])[-1]["body"]

    set_member(github, "rater-three", True)
    comment(github, services, "rater-three", pair["B"], "/rate A correctness=5")  # caches "member"
    set_member(github, "rater-three", False)
    team_event(github, services, "team", "deleted.payload.json")
    comment(github, services, "rater-three", pair["B"], "/prefer tie")
    assert votes(services) == {"rater-three": "A"}


def test_a_refusal_is_cached_only_briefly(github, services, pair):
    comment(github, services, "outsider", pair["A"], "/prefer A")
    [key] = services.redis.keys("tandem:team:evals-org:*:outsider")
    assert services.redis.get(key) == b"0" and 0 < services.redis.ttl(key) <= roles.NOT_MEMBER_TTL <= 30
