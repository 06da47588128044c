"""Alembic environment: runs against the connection tandem.infra.migrate hands over."""

from alembic import context

from tandem.infra import models  # noqa: F401  (registers the tables on Base.metadata)
from tandem.infra.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only alter tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
