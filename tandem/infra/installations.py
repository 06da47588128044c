"""Which accounts have installed the app, and which repositories each installation can see.

Reads webhook fields tolerantly (tandem.domain.webhook_payloads: payload examples drift from the strict
schemas), so a field that is missing or renamed never loses a delivery.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain import webhook_payloads
from tandem.infra.db import utcnow
from tandem.infra.models import Installation, Repository


def upsert_installation(session: Session, data: webhook_payloads.Installation) -> Installation:
    account = data.account or webhook_payloads.Account()
    installation = session.get(Installation, data.id)
    if installation is None:
        installation = Installation(id=data.id)
        session.add(installation)
    installation.account_login = account.login or account.slug or ""
    installation.account_id = account.id or 0
    # (An enterprise's account has a slug, and no type.)
    installation.account_type = account.type or ("Enterprise" if "slug" in account.model_fields_set else "User")
    installation.repository_selection = data.repository_selection
    installation.permissions = data.permissions or {}
    installation.deleted_at = None
    return installation


def add_repositories(
    session: Session, installation: Installation, repositories: Iterable[webhook_payloads.RepositoryRef]
) -> None:
    for data in repositories:
        repository = session.get(Repository, data.id)
        if repository is None:
            repository = Repository(id=data.id)
            session.add(repository)
        repository.installation_id = installation.id
        repository.full_name = data.full_name or f"{installation.account_login}/{data.name or ''}"
        repository.private = bool(data.private)
        repository.removed_at = None


def remove_repositories(session: Session, repository_ids: Iterable[int]) -> None:
    now = utcnow()
    for repository_id in repository_ids:
        repository = session.get(Repository, repository_id)
        if repository is not None and repository.removed_at is None:
            repository.removed_at = now


def delete_installation(session: Session, installation_id: int) -> None:
    installation = session.get(Installation, installation_id)
    if installation is None:
        return
    installation.deleted_at = utcnow()
    remove_repositories(session, [repository.id for repository in installation.repositories])


def set_suspended(session: Session, installation_id: int, suspended: bool) -> None:
    installation = session.get(Installation, installation_id)
    if installation is not None:
        installation.suspended_at = utcnow() if suspended else None


def active_repository(session: Session, full_name: str) -> Repository | None:
    """The repository, if an active (not deleted, not suspended) installation can see it."""
    return session.scalars(
        select(Repository)
        .join(Installation)
        .where(
            Repository.full_name == full_name,
            Repository.removed_at.is_(None),
            Installation.deleted_at.is_(None),
            Installation.suspended_at.is_(None),
        )
    ).first()


def list_installations(session: Session) -> list[Installation]:
    return list(session.scalars(select(Installation).order_by(Installation.account_login)))
