"""Creating a mirror: a fork of the upstream repository in an organization Tandem is installed on."""

from __future__ import annotations

from githubkit.exception import RequestFailed
from sqlalchemy import func, select

from tandem.infra import gitops, installations
from tandem.infra.errors import TandemError
from tandem.infra.models import Installation
from tandem.infra.services import Services


def create_mirror(services: Services, upstream: str, org: str) -> str:
    if upstream.count("/") != 1:
        raise TandemError(f"{upstream!r}: give the upstream as owner/name")
    with services.storage.transaction() as session:
        installation = session.scalars(
            select(Installation).where(
                func.lower(Installation.account_login) == org.lower(), Installation.deleted_at.is_(None)
            )
        ).first()
        if installation is None:
            raise TandemError(f"Tandem is not installed on {org}: install the app there first")
        installation_id = installation.id
    owner, name = upstream.split("/")
    client = services.github.as_installation(installation_id)
    try:
        fork = client.rest.repos.create_fork(owner, name, organization=org, default_branch_only=True).parsed_data
    except RequestFailed as exc:
        if exc.response.status_code == 403:
            raise TandemError(
                f"GitHub refused to fork {upstream} into {org}: forking needs the Administration (write) "
                "permission, which Tandem does not ask for; fork it on github.com (default branch only) "
                f"and add the fork to the installation on {org}"
            ) from None
        raise TandemError(f"GitHub refused to fork {upstream} into {org}: HTTP {exc.response.status_code}") from None
    return fork.full_name


def clone_url(services: Services, repo: str) -> str:
    """Where git reaches a repository: GitHub serves each one's git at its web address plus `.git`
    (github.com, Enterprise Server and the emulator alike), so no request has to ask for it."""
    return f"{services.settings.web_url}/{repo}.git"


def clone_of(services: Services, repo: str) -> gitops.MirrorClone:
    """The workers' clone of an installed mirror (made on its first fetch)."""
    with services.storage.transaction() as session:
        repository = installations.active_repository(session, repo)
        if repository is None:
            raise TandemError(f"Tandem is not installed on {repo} (or it is suspended)")
        repository_id, installation_id = repository.id, repository.installation_id
    return clone(services, repo, repository_id, installation_id)


def clone(services: Services, repo: str, repository_id: int, installation_id: int) -> gitops.MirrorClone:
    """The workers' clone of this repository, with its installation's token (and a fresh one when
    git is refused)."""
    return gitops.MirrorClone(
        services.settings.git_cache_dir,
        str(repository_id),
        clone_url(services, repo),
        services.github.installation_token(installation_id),
        refresh=lambda: services.github.installation_token(installation_id, fresh=True),
    )
