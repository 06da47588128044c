"""API tokens for tests: created straight in the database, as `tandem token create` does."""

from __future__ import annotations

from collections.abc import Sequence

from tandem.infra import tokens
from tandem.infra.models import DEFAULT_TEAM
from tandem.infra.tokens import Scope


def new_token(
    services, name: str | None = None, *, team: str = DEFAULT_TEAM, scopes: Sequence[Scope] = (Scope.READ,)
) -> str:
    """A live token of ``team`` with ``scopes``; unless ``name`` is given, named after them."""
    with services.storage.transaction() as session:
        name = name or f"{team}-{'-'.join(scopes)}"
        return tokens.create_token(session, name, team=team, scopes=list(scopes))
