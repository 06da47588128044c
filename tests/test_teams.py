"""Team changes apply at once: GitHub's membership and team webhooks drop the cached roles."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from tandem import roles
from tandem.models import Judgment
from tests import github_views as views
from tests.conftest import settle

REPO = "evals-org/mlflow"
PAYLOADS = Path(__file__).parent / "fixtures" / "webhook-payloads"


def votes(services) -> dict[str, str]:
    with services.storage.transaction() as session:
        return {j.rater_login: j.verdict for j in session.scalars(select(Judgment).where(Judgment.superseded_at.is_(None)))}


def team_event(github, event: str, name: str, **changes) -> None:
    """GitHub's example payload, about evals-org's raters team and this installation."""
    payload = json.loads((PAYLOADS / event / name).read_text())
    payload["organization"]["login"] = "evals-org"
    payload["team"]["slug"] = payload["team"]["name"] = "raters"
    payload["installation"] = {"id": github.installation.id}
    for key, value in changes.items():
        payload[key]["login"] = value
    github.deliver(event, payload)


def set_member(github, login: str, member: bool) -> None:
    members = github._account("evals-org").teams["raters"].members
    if member:
        members[login] = "member"
    else:
        members.pop(login, None)


def test_someone_added_to_the_raters_team_may_vote_at_once(github, services, pair):
    github.create_user("rater-four")
    github.add_org_member("evals-org", "rater-four")
    github.as_user("rater-four").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    assert votes(services) == {}

    set_member(github, "rater-four", True)
    team_event(github, "membership", "added.payload.json", member="rater-four")
    settle(github, services)
    github.as_user("rater-four").comment(REPO, pair["A"], "/prefer B")
    settle(github, services)
    assert votes(services) == {"rater-four": "B"}


def test_someone_removed_from_the_team_or_a_deleted_team_stops_counting_at_once(github, services, pair):
    github.as_user("rater-three").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    assert votes(services) == {"rater-three": "A"}

    set_member(github, "rater-three", False)
    team_event(github, "membership", "removed.payload.json", member="rater-three")
    settle(github, services)
    github.as_user("rater-three").comment(REPO, pair["A"], "/prefer B")
    settle(github, services)
    assert "only raters can use `/prefer`" in views.comments(github, REPO, pair["A"])[-1]["body"]

    set_member(github, "rater-three", True)
    github.as_user("rater-three").comment(REPO, pair["B"], "/rate A correctness=5")  # caches "member"
    settle(github, services)
    set_member(github, "rater-three", False)
    team_event(github, "team", "deleted.payload.json")
    settle(github, services)
    github.as_user("rater-three").comment(REPO, pair["B"], "/prefer tie")
    settle(github, services)
    assert votes(services) == {"rater-three": "A"}


def test_a_refusal_is_cached_only_briefly(github, services, pair):
    github.as_user("outsider").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    [key] = services.redis.keys("tandem:team:evals-org:*:outsider")
    assert services.redis.get(key) == b"0" and 0 < services.redis.ttl(key) <= roles.NOT_MEMBER_TTL <= 30
