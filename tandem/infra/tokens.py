"""API tokens: shown once at creation, stored only as a SHA-256 hash.

A token belongs to one research team and sees only that team's tasks; its scopes say what it
may do with them.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.infra.db import utcnow
from tandem.infra.errors import NotFound, TandemError
from tandem.infra.models import ApiToken

PREFIX = "tandem_"


class Scope(enum.StrEnum):
    SUBMIT = "submit"  # submit tasks
    READ = "read"  # a task's status, PRs and failure reason
    EXPORT = "export"  # judgments with the de-blinded model names
    RUNNER = "runner"  # the team's model runner (follow-up rounds)


_NAMES = {scope.value for scope in Scope}


@dataclass(frozen=True)
class Client:
    """Who a request comes from: a live token's name, team and scopes."""

    name: str
    team: str
    scopes: frozenset[Scope]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(names: list[str]) -> list[Scope]:
    """Scopes from their names (commas also separate); a TandemError names any unknown one."""
    words = [word.strip() for name in names for word in name.split(",") if word.strip()]
    if not words:
        raise TandemError(f"give the token at least one scope: {', '.join(Scope)}")
    unknown = [word for word in words if word not in _NAMES]
    if unknown:
        raise TandemError(f"unknown scope {unknown[0]!r}: the scopes are {', '.join(Scope)}")
    return sorted(set(map(Scope, words)), key=list(Scope).index)


def create_token(session: Session, name: str, *, team: str, scopes: list[Scope]) -> str:
    if not name.strip():
        raise TandemError("a token needs a name (who or what uses it)")
    if not team.strip():
        raise TandemError("a token needs a team (whose tasks it sees)")
    if not scopes:
        raise TandemError(f"give the token at least one scope: {', '.join(Scope)}")
    if session.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise TandemError(f"a token named {name!r} exists already")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_hash(token), team=team, scopes=[str(s) for s in scopes]))
    return token


def authenticate(session: Session, token: str) -> Client | None:
    """The client a live token stands for; None for an unknown or revoked token."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = utcnow()
    return Client(row.name, row.team, frozenset(Scope(s) for s in row.scopes if s in _NAMES))


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.team, ApiToken.name)))


def revoke_token(session: Session, name: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFound(f"no token named {name!r}; `tandem token list` shows them")
    if row.revoked_at is not None:
        raise TandemError(f"the token {name!r} was revoked already, at {row.revoked_at:%Y-%m-%d %H:%M} UTC")
    row.revoked_at = utcnow()
