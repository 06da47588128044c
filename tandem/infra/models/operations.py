"""The machinery's records: processed deliveries, dead letters, the outbox, API tokens, the export's change feed."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tandem.infra.db import Base, UTCDateTime, utcnow


class ProcessedDelivery(Base):
    """A webhook delivery whose effects are committed; written in the same transaction as them."""

    __tablename__ = "processed_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeadLetterKind(enum.StrEnum):
    UNPROCESSABLE = "unprocessable"  # the payload itself cannot be processed: never retried
    FAILED = "failed"  # a handler failed on every try: a bug, until shown otherwise


class DeadLetter(Base):
    """A delivery answered 202 that could not be processed, parked with its body and the reason
    until `tandem deliveries retry` replays it. Kept in the database, not in Redis: it must
    outlive any TTL and a Redis that lost its data, and it is deleted in the same transaction
    that records the delivery as processed."""

    __tablename__ = "dead_letters"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[DeadLetterKind] = mapped_column(
        Enum(DeadLetterKind, native_enum=False, length=16, values_callable=lambda kinds: [k.value for k in kinds])
    )
    reason: Mapped[str] = mapped_column(Text)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # replayed, not yet processed


class OutboxEntry(Base):
    """A job a delivery's effects call for (an answer on GitHub, a sync, a follow-up prompt for
    the model runner), written in the same transaction as those effects: an outbox. It is queued
    right after the commit; one that a crash left behind is queued by the periodic sweep."""

    __tablename__ = "outbox_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The RQ job's id (ids of deleted rows may be reused, so not derived from `id`).
    job_id: Mapped[str] = mapped_column(String(64), default=lambda: f"outbox-{uuid.uuid4().hex}")
    queue: Mapped[str] = mapped_column(String(64))
    func: Mapped[str] = mapped_column(String(255))  # dotted path of the job function
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # for jobs with keyword-only arguments
    # Queue it only if no job with this key is waiting already (e.g. one sync per pair).
    coalesce_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiToken(Base):
    """A bearer token for the HTTP API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON)  # tandem.infra.tokens.Scope values
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExportChange(Base):
    """A write that changed what the export shows (tandem.domain.changes): one judgment (judgment_id),
    everything of one rater in a round (rater_id, no judgment_id: scores, line comments), or a
    round itself (neither). Incremental exports read these instead of the whole history."""

    __tablename__ = "export_changes"
    # AUTOINCREMENT: on SQLite the id is the cursor, so an id must never be handed out twice.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(Integer)
    rater_id: Mapped[int | None] = mapped_column(BigInteger)
    judgment_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # PostgreSQL: the writing transaction's id (pg_current_xact_id), the cursor's order.
    txid: Mapped[int | None] = mapped_column(BigInteger, index=True)
