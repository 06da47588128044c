"""Who may rate and who may review: `.github/tandem.yml` names users and teams; team membership
is asked of GitHub (never read from a payload's author_association, which misreports private
organization members) and cached: a member for a few minutes, a non-member for a few seconds
(someone just refused is often added right after). `membership`, `team` and `organization`
webhooks drop an organization's cached answers at once (``forget_teams``)."""

from __future__ import annotations

import logging

from githubkit import GitHub
from githubkit.exception import RateLimitExceeded, RequestFailed

from tandem.domain.repo_config import People, RepoConfig
from tandem.domain.vocabulary import Role
from tandem.infra import redis_keys
from tandem.infra.services import Services

log = logging.getLogger(__name__)

MEMBERSHIP_TTL = 300
NOT_MEMBER_TTL = 30


def forget_teams(services: Services, org: str) -> None:
    """Drop every cached team membership in ``org``: the next check asks GitHub.

    The answers are keyed by a generation number that this bumps, so no key has to be found and
    deleted; the old ones expire on their own.
    """
    services.redis.incr(redis_keys.teams_generation(org))


def team_member(services: Services, client: GitHub, org: str, team: str, login: str) -> bool:
    generation = int(services.redis.get(redis_keys.teams_generation(org)) or 0)
    key = redis_keys.team_member(org, generation, team, login)
    cached = services.redis.get(key)
    if cached is not None:
        return cached == b"1"
    try:
        response = client.request("GET", f"/orgs/{org}/teams/{team}/memberships/{login}")
        member = response.json().get("state") == "active"
    except RequestFailed as exc:
        if exc.response.status_code not in (403, 404) or isinstance(exc, RateLimitExceeded):
            raise
        if exc.response.status_code == 403:  # members:read not granted: nobody is in the team
            log.warning("cannot read team %s/%s: the installation lacks members:read", org, team)
        member = False
    services.redis.set(key, "1" if member else "0", ex=MEMBERSHIP_TTL if member else NOT_MEMBER_TTL)
    return member


def _is_one_of(services: Services, client: GitHub, people: People, org: str, login: str) -> bool:
    if login.lower() in people.names():
        return True
    return any(team_member(services, client, org, team, login) for team in people.teams)


def roles_of(services: Services, client: GitHub, config: RepoConfig, org: str, login: str) -> set[Role]:
    roles = {Role.ANYONE}
    if _is_one_of(services, client, config.raters, org, login):
        roles.add(Role.RATER)
    if _is_one_of(services, client, config.reviewers, org, login):
        roles.add(Role.REVIEWER)
    return roles
