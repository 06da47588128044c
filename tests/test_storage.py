"""The same models and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from tandem.infra import migrate
from tandem.infra.db import Base, Storage, utcnow
from tandem.infra.models import Installation, ProcessedDelivery


def test_migrations_build_exactly_the_models(database_url):
    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine)
    assert migrate.current_revision(storage.engine) == migrate.head_revision()
    with storage.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == [], "models changed without a migration: run tandem.infra.migrate.revision()"
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


def test_tasks_and_tokens_from_before_teams_belong_to_the_default_team(database_url):
    """0002_token_teams: existing tasks and tokens join the team "default", and the tokens keep
    what they could do before scopes (submit, read, export)."""
    import hashlib

    from sqlalchemy import text

    from tandem.infra import tokens
    from tandem.infra.models import ApiToken, Task

    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine, "0001")
    with storage.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('old', :hash, CURRENT_TIMESTAMP)"),
            {"hash": hashlib.sha256(b"tandem_old").hexdigest()},
        )
        connection.execute(
            text(
                "INSERT INTO tasks (repo_full_name, base, prompt, raters, metadata, status, created_at, updated_at) "
                "VALUES ('evals-org/mlflow', 'main', 'Fix it.', '[]', '{}', 'queued', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    migrate.upgrade(storage.engine)
    with storage.transaction() as session:
        assert session.scalars(select(Task.team)).one() == "default"
        assert session.scalars(select(ApiToken.scopes)).one() == ["submit", "read", "export"]
        assert tokens.authenticate(session, "tandem_old").team == "default"
    storage.engine.dispose()
