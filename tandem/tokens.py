"""API tokens: shown once at creation, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.db import utcnow
from tandem.errors import TandemError
from tandem.models import ApiToken

PREFIX = "tandem_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    if not name.strip():
        raise TandemError("a token needs a name (who or what uses it)")
    if session.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise TandemError(f"a token named {name!r} exists already")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_hash(token)))
    return token


def authenticate(session: Session, token: str) -> str | None:
    """The token's name, if it is a live token."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = utcnow()
    return row.name
