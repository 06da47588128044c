"""The same models and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from tandem import migrate
from tandem.db import Base, Storage, utcnow
from tandem.models import Installation, ProcessedDelivery


def test_migrations_build_exactly_the_models(database_url):
    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine)
    assert migrate.current_revision(storage.engine) == migrate.head_revision()
    with storage.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == [], "models changed without a migration: run tandem.migrate.revision()"
    storage.engine.dispose()


def test_datetimes_come_back_timezone_aware(storage):
    now = utcnow()
    with storage.transaction() as session:
        session.add(Installation(id=1, account_login="evals-org", account_id=7, account_type="Organization"))
        session.add(ProcessedDelivery(delivery_id="d-1", event="ping", processed_at=now))
    with storage.transaction() as session:
        row = session.scalars(select(ProcessedDelivery)).one()
        assert row.processed_at == now
        assert row.processed_at.tzinfo is not None
